using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// The part-file writer: aligned chunks with direct I/O past the page cache where the file system takes it, the tail
/// (and everything where direct I/O is refused or off) through the page cache; the file's bytes are the same either way.
/// </summary>
public sealed partial class PartFileWriterTests : IDisposable
{
    private const int Chunk = 64 * 1024;
    private readonly List<string> _dirs = [];

    public void Dispose()
    {
        foreach (var d in _dirs)
        {
            try
            {
                Directory.Delete(d, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private string NewDir(string parent)
    {
        var dir = Path.Combine(parent, "s6io-part-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        _dirs.Add(dir);
        return dir;
    }

    /// <summary>Writes 5 full chunks and a 1000-byte tail out of order, as lanes do, and returns what was written.</summary>
    private static byte[] WriteAll(string path, bool direct, out bool wasDirect)
    {
        var data = new byte[(5 * Chunk) + 1000];
        new Random(7).NextBytes(data);
        using var part = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite);
        part.SetLength(data.Length);
        using var writer = PartFileWriter.Open(part.SafeFileHandle, Chunk, direct);
        wasDirect = writer.IsDirect;
        foreach (var i in new[] { 5, 2, 0, 4, 1, 3 })
        {
            var length = Math.Min(Chunk, data.Length - (i * Chunk));
            // The chunk sits at an odd offset of its buffer, as a reply's data does in a pooled network buffer.
            var buffer = new byte[length + 3];
            data.AsSpan(i * Chunk, length).CopyTo(buffer.AsSpan(3));
            writer.Write(buffer.AsSpan(3, length), (long)i * Chunk);
        }
        // Chunks at odd offsets of ordinary buffers: the full ones are copied into the aligned bounce buffer first.
        Assert.Equal(wasDirect ? 5 : 0, writer.BounceCopies);
        part.Flush(flushToDisk: true);
        return data;
    }

    [Fact]
    public void On_a_disk_file_system_aligned_chunks_bypass_the_page_cache_and_the_tail_does_not()
    {
        var dir = NewDir(Path.GetTempPath());
        var path = Path.Combine(dir, "f.part");
        var data = WriteAll(path, direct: true, out var wasDirect);
        Assert.Equal(data, File.ReadAllBytes(path));
        if (!OperatingSystem.IsLinux())
        {
            Assert.False(wasDirect);
            return;
        }
        var format = new DriveInfo(dir).DriveFormat;
        if (!(format.Contains("ext", StringComparison.OrdinalIgnoreCase) || format.Contains("xfs", StringComparison.OrdinalIgnoreCase)
            || format.Contains("btrfs", StringComparison.OrdinalIgnoreCase)))
        {
            // tmpfs, overlay and the like: direct I/O may be refused, or taken and done through the page cache anyway.
            return;
        }
        Assert.True(wasDirect, $"direct I/O not used on {format}");
        // Checked again after a second, fresh write (ReadAllBytes above pulled the file into the cache).
        File.Delete(path);
        WriteAll(path, direct: true, out _);
        var resident = ResidentPages(path);
        var fullChunkPages = 5 * Chunk / Environment.SystemPageSize;
        Assert.Equal(0, resident.Take(fullChunkPages).Count(r => r));
        Assert.True(resident[^1], "the tail, written buffered, is in the page cache");
    }

    [Fact]
    public async Task Chunks_in_blocks_are_written_concurrently_straight_from_the_blocks_and_the_part_file_is_allocated_up_front()
    {
        var dir = NewDir(Path.GetTempPath());
        var path = Path.Combine(dir, "f.part");
        const int Chunks = 32;
        var data = new byte[Chunks * Chunk];
        new Random(11).NextBytes(data);
        using (var part = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            part.SetLength(data.Length);
            using var writer = PartFileWriter.Open(part.SafeFileHandle, Chunk);
            if (!writer.IsDirect)
            {
                // No direct I/O here (another OS, a file system that refuses it): no blocks are handed out either.
                Assert.Null(writer.RentBuffer());
                return;
            }
            Assert.True(AllocatedBytes(path) >= data.Length, "the part file's blocks are allocated when the writer opens it");
            // Lanes receive replies into blocks and write them at once, several at a time, in any order.
            await Task.WhenAll(Enumerable.Range(0, Chunks).Reverse().Select(i => Task.Run(() =>
            {
                var into = new ChunkDestination(writer.RentBuffer()!);
                const int HeaderLength = 7;
                using var reply = into.TryClaim(HeaderLength, HeaderLength + Chunk + 33)!;
                data.AsSpan(i * Chunk, Chunk).CopyTo(reply.Memory.Span[HeaderLength..]);
                writer.Write(reply.Memory.Span.Slice(HeaderLength, Chunk), (long)i * Chunk);
                into.Withdraw();
            })));
            Assert.Equal(0, writer.Buffers!.Live - writer.Buffers.Pooled);
            Assert.Equal(0, writer.BounceCopies);
            part.Flush(flushToDisk: true);
        }
        Assert.Equal(0, ResidentPages(path).Count(r => r));
        Assert.Equal(data, File.ReadAllBytes(path));
    }

    [Fact]
    public void With_direct_writes_off_every_chunk_goes_through_the_page_cache()
    {
        var dir = NewDir(Path.GetTempPath());
        var path = Path.Combine(dir, "f.part");
        var data = WriteAll(path, direct: false, out var wasDirect);
        Assert.False(wasDirect);
        if (OperatingSystem.IsLinux())
        {
            Assert.All(ResidentPages(path), Assert.True);
        }
        Assert.Equal(data, File.ReadAllBytes(path));
    }

    [Fact]
    public void On_tmpfs_the_writer_falls_back_or_goes_direct_and_the_bytes_are_right_either_way()
    {
        // tmpfs refused O_DIRECT before Linux 6.6 and takes it (as buffered I/O) since; /dev/shm is a tmpfs where present.
        var parent = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        var path = Path.Combine(NewDir(parent), "f.part");
        var data = WriteAll(path, direct: true, out _);
        Assert.Equal(data, File.ReadAllBytes(path));
    }

    [Fact]
    public async Task A_download_through_real_nodes_writes_the_right_bytes_with_direct_writes_on_and_off()
    {
        foreach (var direct in new[] { true, false })
        {
            {
                await using var seeder = TransferNode.Start();
                PartFileWriter? writer = null;
                var wasDirect = false;
                await using var downloader = TransferNode.Start(new TransferOptions
                {
                    DirectWrites = direct,
                    PartFileOpened = w => (writer, wasDirect) = (w, w.IsDirect),
                });
                var data = new byte[(3 * TransferNode.ChunkSize) + 12345];
                new Random(direct ? 1 : 2).NextBytes(data);
                var path = Path.Combine(seeder.Home, "d.bin");
                await File.WriteAllBytesAsync(path, data);
                var id = await seeder.ShareAsync(path);
                await downloader.ConnectAsync(seeder);
                var result = await downloader.Transfer.StartDownload(id, Path.Combine(downloader.Home, "out")).Completion;
                Assert.Equal(DownloadState.Released, result.State);
                Assert.Equal(data, await File.ReadAllBytesAsync(result.Path!));
                Assert.NotNull(writer);
                Assert.True(direct || !wasDirect);
                if (wasDirect)
                {
                    // Every reply (the short last one too) was received into a block and written from it; none is still held.
                    Assert.InRange(writer.Buffers!.Claims, 4, 8);
                    Assert.Equal(0, writer.BounceCopies);
                    Assert.Equal(0, writer.Buffers.Live);
                }
            }
        }
    }

    /// <summary>Bytes of disk allocated to the file (<c>stat</c>'s block count).</summary>
    private static long AllocatedBytes(string path)
    {
        using var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%b %B", path]) { RedirectStandardOutput = true })!;
        var fields = stat.StandardOutput.ReadToEnd().Split(' ', StringSplitOptions.TrimEntries);
        stat.WaitForExit();
        return long.Parse(fields[0], System.Globalization.CultureInfo.InvariantCulture) * long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Which pages of the file are in the page cache (mincore over a read-only mapping).</summary>
    private static unsafe bool[] ResidentPages(string path)
    {
        var length = new FileInfo(path).Length;
        var page = Environment.SystemPageSize;
        var pages = (int)((length + page - 1) / page);
        using var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        try
        {
            var vector = new byte[pages];
            fixed (byte* v = vector)
            {
                Assert.Equal(0, MinCore(pointer + view.PointerOffset, (nuint)length, v));
            }
            return [.. vector.Select(b => (b & 1) != 0)];
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    [LibraryImport("libc", EntryPoint = "mincore", SetLastError = true)]
    private static unsafe partial int MinCore(byte* address, nuint length, byte* vector);
}

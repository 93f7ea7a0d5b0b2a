using System.Diagnostics;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// A seeder keeps a served file open between its chunks (issue 20). A file replaced, truncated or changed in place
/// between two chunks must still end in <see cref="WireErrorCode.Changed"/>, never in the new bytes (or the old
/// handle's bytes for a path that now names another file) served as the old content; the kept handles are few, and
/// closed when idle and when the session ends.
/// </summary>
public sealed class ServedFilesTests
{
    private const int Chunks = StatSkipTests.Chunks;
    private const int Size = StatSkipTests.Size;

    /// <summary>A seeder sharing one file with its ctime settled (the re-hash skip armed), connected to a peer.</summary>
    private static Task<StatSkipTests.Setup> StartAsync(TimeSpan? idle = null) =>
        StatSkipTests.StartAsync(b => b.ServedFileIdle = idle ?? TimeSpan.FromMinutes(5));

    /// <summary>Chunk <paramref name="index"/> is served and is the indexed content.</summary>
    private static async Task AssertServedAsync(StatSkipTests.Setup s, int index)
    {
        using var reply = await s.Session.GetChunkAsync(s.Id, index, CancellationToken.None);
        Assert.True(ContentVerifier.VerifyChunk(s.Id, Size, TransferNode.ChunkSize, index, reply.Data.Span, reply.Proof));
    }

    /// <summary>Chunk <paramref name="index"/> is refused as changed (whatever the file holds now is never sent as the old content).</summary>
    private static async Task AssertChangedAsync(StatSkipTests.Setup s, int index)
    {
        var e = await Assert.ThrowsAsync<PeerRequestException>(() => s.Session.GetChunkAsync(s.Id, index, CancellationToken.None));
        Assert.Equal(WireErrorCode.Changed, e.Code);
    }

    /// <summary>Open descriptors of this process naming <paramref name="path"/> (a replaced file's shows " (deleted)").</summary>
    private static int OpenHandles(string path) =>
        Directory.GetFiles("/proc/self/fd").Count(fd =>
        {
            try
            {
                return new FileInfo(fd).LinkTarget?.StartsWith(path, StringComparison.Ordinal) == true;
            }
            catch (IOException)
            {
                return false;
            }
        });

    [Fact]
    public async Task A_served_file_stays_open_between_chunks_and_is_closed_when_idle()
    {
        if (!ShareFileSystem.IsNative)
        {
            return;
        }
        await using var s = await StartAsync(idle: TimeSpan.FromMilliseconds(300));
        for (var i = 0; i < Chunks; i++)
        {
            await AssertServedAsync(s, i);
        }
        Assert.Equal(0, Volatile.Read(ref s.Rehashed));
        Assert.Equal(1, OpenHandles(s.Path));
        await Wait.UntilAsync(() => OpenHandles(s.Path) == 0, TimeSpan.FromSeconds(10), "the idle handle to close");
        // Served again after that: opened afresh.
        await AssertServedAsync(s, 0);
    }

    [Fact]
    public async Task Replaced_by_rename_between_chunks_with_the_same_size_and_mtime_is_refused()
    {
        await using var s = await StartAsync();
        await AssertServedAsync(s, 0);
        var mtime = File.GetLastWriteTimeUtc(s.Path);
        var bytes = File.ReadAllBytes(s.Path);
        bytes[TransferNode.ChunkSize + 10] ^= 1;
        var other = s.Path + ".new";
        File.WriteAllBytes(other, bytes);
        File.SetLastWriteTimeUtc(other, mtime);
        File.Move(other, s.Path, overwrite: true);
        // The kept handle still holds the old, unchanged inode; the shared name no longer does.
        await AssertChangedAsync(s, 1);
        await AssertChangedOrGoneAsync(s);
    }

    [Fact]
    public async Task Replaced_by_an_identical_copy_between_chunks_is_refused_until_indexed_again()
    {
        // Even the very same bytes under a new inode: the path does not name the indexed file any more.
        await using var s = await StartAsync();
        await AssertServedAsync(s, 0);
        var mtime = File.GetLastWriteTimeUtc(s.Path);
        var other = s.Path + ".copy";
        File.Copy(s.Path, other);
        File.SetLastWriteTimeUtc(other, mtime);
        File.Move(other, s.Path, overwrite: true);
        await AssertChangedAsync(s, 1);
    }

    [Fact]
    public async Task Truncated_between_chunks_is_refused()
    {
        await using var s = await StartAsync();
        await AssertServedAsync(s, 0);
        using (var f = new FileStream(s.Path, FileMode.Open, FileAccess.Write))
        {
            f.SetLength(Size - 1);
        }
        await AssertChangedAsync(s, 1);
    }

    [Fact]
    public async Task Truncated_and_grown_back_between_chunks_with_the_mtime_restored_is_refused_where_the_bytes_changed()
    {
        await using var s = await StartAsync();
        await AssertServedAsync(s, 0);
        var mtime = File.GetLastWriteTimeUtc(s.Path);
        using (var f = new FileStream(s.Path, FileMode.Open, FileAccess.Write))
        {
            f.SetLength(Size / 2);
            f.SetLength(Size);
        }
        File.SetLastWriteTimeUtc(s.Path, mtime);
        // Through the kept handle: the first half hashes as indexed and is served, the zeroed half is refused.
        await AssertServedAsync(s, 1);
        Assert.Equal(1, Volatile.Read(ref s.Rehashed));
        await AssertChangedAsync(s, Chunks - 1);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Changed_in_place_between_chunks_with_the_mtime_restored_is_refused(bool throughAnOutsideHardLink)
    {
        await using var s = await StartAsync();
        await AssertServedAsync(s, 0);
        var mtime = File.GetLastWriteTimeUtc(s.Path);
        var target = s.Path;
        if (throughAnOutsideHardLink)
        {
            target = Path.Combine(s.Seeder.Home, "outside-link.bin");
            Assert.Equal(0, Run("ln", s.Path, target));
        }
        using (var f = new FileStream(target, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = TransferNode.ChunkSize + 100;
            var b = f.ReadByte();
            f.Position--;
            f.WriteByte((byte)(b ^ 0x5A));
        }
        File.SetLastWriteTimeUtc(target, mtime);
        Assert.Equal(s.Seeder.Db.Catalog.Get(s.Path)!.MtimeNs, ShareFileSystem.Lstat(s.Path)!.Value.MtimeNs);
        await AssertChangedAsync(s, 1);
    }

    [Fact]
    public async Task Removed_between_chunks_is_refused()
    {
        await using var s = await StartAsync();
        await AssertServedAsync(s, 0);
        File.Delete(s.Path);
        var e = await Assert.ThrowsAsync<PeerRequestException>(() => s.Session.GetChunkAsync(s.Id, 1, CancellationToken.None));
        Assert.True(e.Code is WireErrorCode.Changed or WireErrorCode.NotFound, e.Code.ToString());
        Assert.Equal(0, OpenHandles(s.Path));
    }

    [Fact]
    public async Task At_most_a_few_files_are_kept_open_per_session_and_all_are_closed_when_the_session_ends()
    {
        if (!ShareFileSystem.IsNative)
        {
            return;
        }
        await using var s = await StartAsync();
        var dir = Path.GetDirectoryName(s.Path)!;
        var ids = new List<ContentId>();
        for (var f = 0; f < ServedFiles.MaxOpen + 3; f++)
        {
            ids.Add(await s.Seeder.ShareAsync(s.Seeder.WriteFile($"many-{f}.bin", TransferNode.ChunkSize, seed: 100 + f)));
        }
        foreach (var id in ids)
        {
            using var reply = await s.Session.GetChunkAsync(id, 0, CancellationToken.None);
        }
        Assert.Equal(ServedFiles.MaxOpen, OpenHandles(Path.Combine(dir, "many-")));
        s.Session.Close("test");
        await Wait.UntilAsync(() => OpenHandles(dir) == 0, TimeSpan.FromSeconds(10), "the kept handles to close with the session");
    }

    /// <summary>After the first refusal the file is re-indexed: the old content is changed or gone for good.</summary>
    private static async Task AssertChangedOrGoneAsync(StatSkipTests.Setup s)
    {
        await s.Seeder.Transfer.Shares.WhenIdleAsync();
        for (var i = 0; i < Chunks; i++)
        {
            var e = await Assert.ThrowsAsync<PeerRequestException>(() => s.Session.GetChunkAsync(s.Id, i, CancellationToken.None));
            Assert.True(e.Code is WireErrorCode.Changed or WireErrorCode.NotFound, $"chunk {i}: {e.Code}");
        }
        Assert.NotEqual(s.Id.Text, s.Seeder.Db.Catalog.Get(s.Path)?.ContentId);
    }

    private static int Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { UseShellExecute = false })!;
        p.WaitForExit();
        return p.ExitCode;
    }
}

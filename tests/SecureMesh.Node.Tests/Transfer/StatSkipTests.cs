using System.Diagnostics;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// A seeder skips re-hashing a chunk it serves only while the file's device, inode, size, mtime and ctime are those it
/// indexed (the ctime recorded only once settled). Every way of changing the file that keeps the old size and mtime,
/// or swaps another file in, must still end in <see cref="WireErrorCode.Changed"/>, never in the new bytes served as
/// the old content.
/// </summary>
public sealed class StatSkipTests
{
    internal const int Chunks = 4;
    internal const int Size = Chunks * TransferNode.ChunkSize;

    internal sealed class Setup : IAsyncDisposable
    {
        public required TransferNode Seeder { get; init; }
        public required TransferNode Peer { get; init; }
        public required string Path { get; init; }
        public required ContentId Id { get; init; }
        public int Rehashed;

        public ProtocolSession Session => Assert.Single(Peer.Transfer.OpenSessions());

        public async ValueTask DisposeAsync()
        {
            await Peer.DisposeAsync();
            await Seeder.DisposeAsync();
        }
    }

    /// <summary>A seeder whose shared file's ctime is settled when indexed, so the skip is armed (asserted).</summary>
    internal static async Task<Setup> StartAsync(Action<TransferOptionsBuilder>? configure = null)
    {
        Setup? setup = null;
        var seeder = TransferNode.Start(TransferNode.Fast(b =>
        {
            b.Rehashed = _ => Interlocked.Increment(ref setup!.Rehashed);
            configure?.Invoke(b);
        }));
        var peer = TransferNode.Start();
        var path = seeder.WriteFile("s.bin", Size, seed: 3);
        // Past the file system's timestamp granularity, so the ctime can be recorded.
        var ctime = ShareFileSystem.Lstat(path)!.Value.CtimeNs;
        await Wait.UntilAsync(() => ShareFileSystem.CtimeSettled(ctime, ShareFileSystem.CoarseNowNs()), TimeSpan.FromSeconds(5), "the ctime to settle");
        var id = await seeder.ShareAsync(path);
        setup = new Setup { Seeder = seeder, Peer = peer, Path = path, Id = id };
        Assert.Equal(ctime, seeder.Db.Catalog.Get(path)!.CtimeNs);
        await peer.ConnectAsync(seeder);
        return setup;
    }

    private static async Task AssertServedUnchangedWithoutRehashAsync(Setup s)
    {
        for (var i = 0; i < Chunks; i++)
        {
            using var reply = await s.Session.GetChunkAsync(s.Id, i, CancellationToken.None);
            Assert.True(ContentVerifier.VerifyChunk(s.Id, Size, TransferNode.ChunkSize, i, reply.Data.Span, reply.Proof));
        }
        Assert.Equal(0, Volatile.Read(ref s.Rehashed));
    }

    private static async Task AssertChangedAsync(Setup s)
    {
        // The first request finds the change; once the file is re-indexed the old content is no longer there at all.
        for (var i = 0; i < Chunks; i++)
        {
            var e = await Assert.ThrowsAsync<PeerRequestException>(() => s.Session.GetChunkAsync(s.Id, i, CancellationToken.None));
            Assert.True(i == 0 ? e.Code == WireErrorCode.Changed : e.Code is WireErrorCode.Changed or WireErrorCode.NotFound, $"chunk {i}: {e.Code}");
            await s.Seeder.Transfer.Shares.WhenIdleAsync();
        }
        Assert.NotEqual(s.Id.Text, s.Seeder.Db.Catalog.Get(s.Path)?.ContentId);
    }

    /// <summary>Flips one byte in every chunk in place, size kept.</summary>
    private static void ScribbleInPlace(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        for (long at = 100; at < Size; at += TransferNode.ChunkSize)
        {
            f.Position = at;
            var b = f.ReadByte();
            f.Position = at;
            f.WriteByte((byte)(b ^ 0x5A));
        }
    }

    private static void Touch(string path, long mtimeNs)
    {
        var stamp = $"@{mtimeNs / 1_000_000_000}.{mtimeNs % 1_000_000_000:D9}";
        using var p = Process.Start(new ProcessStartInfo("touch", ["-m", "-d", stamp, path]) { UseShellExecute = false })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public async Task An_unchanged_file_is_served_without_hashing_its_chunks_again()
    {
        await using var s = await StartAsync();
        await AssertServedUnchangedWithoutRehashAsync(s);
    }

    [Fact]
    public async Task A_ctime_change_alone_hashes_again_and_still_serves_the_same_bytes()
    {
        await using var s = await StartAsync();
        File.SetUnixFileMode(s.Path, File.GetUnixFileMode(s.Path) ^ UnixFileMode.OtherRead);
        for (var i = 0; i < Chunks; i++)
        {
            using var reply = await s.Session.GetChunkAsync(s.Id, i, CancellationToken.None);
            Assert.True(ContentVerifier.VerifyChunk(s.Id, Size, TransferNode.ChunkSize, i, reply.Data.Span, reply.Proof));
        }
        Assert.Equal(Chunks, Volatile.Read(ref s.Rehashed));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Changed_in_place_with_the_mtime_restored_by_SetLastWriteTime_or_touch_is_refused(bool byTouch)
    {
        await using var s = await StartAsync();
        var mtime = File.GetLastWriteTimeUtc(s.Path);
        ScribbleInPlace(s.Path);
        if (byTouch)
        {
            Touch(s.Path, (mtime.Ticks - DateTime.UnixEpoch.Ticks) * 100);
        }
        else
        {
            File.SetLastWriteTimeUtc(s.Path, mtime);
        }
        Assert.Equal(s.Seeder.Db.Catalog.Get(s.Path)!.MtimeNs, ShareFileSystem.Lstat(s.Path)!.Value.MtimeNs);
        await AssertChangedAsync(s);
    }

    [Fact]
    public async Task Replaced_by_rename_with_the_same_size_and_mtime_is_refused()
    {
        await using var s = await StartAsync();
        var mtime = File.GetLastWriteTimeUtc(s.Path);
        var other = s.Path + ".new";
        var bytes = File.ReadAllBytes(s.Path);
        bytes[10] ^= 1;
        File.WriteAllBytes(other, bytes);
        File.SetLastWriteTimeUtc(other, mtime);
        File.Move(other, s.Path, overwrite: true);
        await AssertChangedAsync(s);
    }

    [Fact]
    public async Task Truncated_and_grown_back_to_the_same_size_and_mtime_is_refused()
    {
        await using var s = await StartAsync();
        var mtime = File.GetLastWriteTimeUtc(s.Path);
        using (var f = new FileStream(s.Path, FileMode.Open, FileAccess.Write))
        {
            f.SetLength(Size / 2);
            f.SetLength(Size);
        }
        File.SetLastWriteTimeUtc(s.Path, mtime);
        // The first half is unchanged: those chunks are hashed again and served; the zeroed half is refused.
        for (var i = 0; i < Chunks / 2; i++)
        {
            using var reply = await s.Session.GetChunkAsync(s.Id, i, CancellationToken.None);
            Assert.True(ContentVerifier.VerifyChunk(s.Id, Size, TransferNode.ChunkSize, i, reply.Data.Span, reply.Proof));
        }
        Assert.Equal(Chunks / 2, Volatile.Read(ref s.Rehashed));
        var e = await Assert.ThrowsAsync<PeerRequestException>(() => s.Session.GetChunkAsync(s.Id, Chunks - 1, CancellationToken.None));
        Assert.Equal(WireErrorCode.Changed, e.Code);
    }

    [Fact]
    public async Task Truncated_is_refused()
    {
        await using var s = await StartAsync();
        using (var f = new FileStream(s.Path, FileMode.Open, FileAccess.Write))
        {
            f.SetLength(Size - 1);
        }
        await AssertChangedAsync(s);
    }

    [Fact]
    public async Task Appended_to_is_refused()
    {
        await using var s = await StartAsync();
        await File.AppendAllTextAsync(s.Path, "x");
        await AssertChangedAsync(s);
    }

    [Fact]
    public async Task Swapped_for_a_hard_link_to_another_file_with_the_same_size_and_mtime_is_refused()
    {
        await using var s = await StartAsync();
        var mtime = File.GetLastWriteTimeUtc(s.Path);
        var elsewhere = Path.Combine(s.Seeder.Home, "elsewhere.bin");
        var bytes = File.ReadAllBytes(s.Path);
        bytes[^1] ^= 1;
        File.WriteAllBytes(elsewhere, bytes);
        File.SetLastWriteTimeUtc(elsewhere, mtime);
        // The shared name becomes a second name of the other file (same size and mtime, another inode).
        var tmp = s.Path + ".link";
        Assert.Equal(0, Link(elsewhere, tmp));
        File.Move(tmp, s.Path, overwrite: true);
        await AssertChangedAsync(s);
    }

    [Fact]
    public async Task Written_through_a_hard_link_from_outside_the_share_with_the_mtime_restored_is_refused()
    {
        await using var s = await StartAsync();
        var mtime = File.GetLastWriteTimeUtc(s.Path);
        var outside = Path.Combine(s.Seeder.Home, "outside-link.bin");
        Assert.Equal(0, Link(s.Path, outside));
        ScribbleInPlace(outside);
        File.SetLastWriteTimeUtc(outside, mtime);
        await AssertChangedAsync(s);
    }

    [Fact]
    public async Task A_rescan_hashes_again_a_file_whose_recorded_ctime_moved_even_with_size_and_mtime_kept()
    {
        await using var s = await StartAsync();
        var mtime = File.GetLastWriteTimeUtc(s.Path);
        ScribbleInPlace(s.Path);
        File.SetLastWriteTimeUtc(s.Path, mtime);
        var rescan = await s.Seeder.Transfer.Shares.RescanAsync(null, CancellationToken.None);
        Assert.Equal(1, rescan.Indexed);
        Assert.NotEqual(s.Id.Text, s.Seeder.Db.Catalog.Get(s.Path)!.ContentId);
    }

    private static int Link(string existing, string newName)
    {
        using var p = Process.Start(new ProcessStartInfo("ln", [existing, newName]) { UseShellExecute = false })!;
        p.WaitForExit();
        return p.ExitCode;
    }
}

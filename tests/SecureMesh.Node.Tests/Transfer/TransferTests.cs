using System.Collections.Concurrent;
using System.Diagnostics;
using SecureMesh.Node.Control;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

public sealed class TransferTests
{
    [Fact]
    public async Task A_file_shared_by_A_is_found_by_Bs_search_and_fetched_byte_identical()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        var path = a.WriteFile("holiday photos.tar", 300_000);
        var id = await a.ShareAsync(path);
        await b.ConnectAsync(a);

        var hits = await b.Transfer.SearchAsync("holiday", CancellationToken.None);
        var hit = Assert.Single(hits);
        Assert.Equal(id.Text, hit.ContentId);
        Assert.Equal("holiday photos.tar", hit.Name);
        Assert.Equal(300_000, hit.Size);
        Assert.Equal([a.PeerId.Text], hit.Peers);

        var handle = b.Transfer.StartDownload(id);
        var result = await handle.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(result.Path!));
        Assert.StartsWith(b.Downloads, result.Path, StringComparison.Ordinal);
        Assert.Empty(b.Db.Downloads.List());
    }

    [Fact]
    public async Task A_search_for_the_shared_folders_name_finds_the_files_inside_it()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        var folder = Path.Combine(a.Home, "Vacation Pics");
        Directory.CreateDirectory(Path.Combine(folder, "Rome"));
        File.WriteAllBytes(Path.Combine(folder, "Rome", "img1.jpg"), [1, 2, 3]);
        File.WriteAllBytes(Path.Combine(folder, "notes.txt"), [4, 5, 6, 7]);
        await a.Transfer.Shares.AddAsync(folder, null, CancellationToken.None);
        await b.ConnectAsync(a);

        var hits = await b.Transfer.SearchAsync("vacation", CancellationToken.None);
        Assert.Equal(["img1.jpg", "notes.txt"], hits.Select(h => h.Name).Order(StringComparer.Ordinal));
        var rome = Assert.Single(await b.Transfer.SearchAsync("rome", CancellationToken.None));
        Assert.Equal("img1.jpg", rome.Name);
        // The folders above the share (the node's home, a temp folder) are never searched.
        Assert.Empty(await b.Transfer.SearchAsync(Path.GetFileName(a.Home), CancellationToken.None));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(TransferNode.ChunkSize)]
    [InlineData(3 * TransferNode.ChunkSize)]
    public async Task Edge_sizes_arrive_byte_identical_in_the_out_folder(int size)
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        var path = a.WriteFile("edge.bin", size);
        var id = await a.ShareAsync(path);
        await b.ConnectAsync(a);
        var outDir = Path.Combine(b.Home, "elsewhere");
        var result = await b.Transfer.StartDownload(id, outDir).Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Equal(Path.Combine(outDir, "edge.bin"), result.Path);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(result.Path!));
    }

    [Fact]
    public async Task A_follower_waiting_on_a_download_is_answered_as_it_ends_not_at_the_end_of_its_wait()
    {
        // 12 chunks at 48 KiB/s: about 4 s.
        await using var a = TransferNode.Start(TransferNode.Fast(o => o.UploadLimit = 48 * 1024));
        await using var b = TransferNode.Start();
        var path = a.WriteFile("slow.bin", 12 * TransferNode.ChunkSize);
        var id = await a.ShareAsync(path);
        await b.ConnectAsync(a);
        var control = new TransferControlService(b.Transfer);
        await control.StartDownloadAsync(id.Text, null, CancellationToken.None);
        var handle = Assert.Single(b.Transfer.ListTransfers());
        var endedAt = handle.Completion.ContinueWith(_ => Stopwatch.GetTimestamp(), TaskScheduler.Default);

        // While it runs, a wait runs out and the answer says it is not finished.
        var watch = Stopwatch.StartNew();
        var running = await control.GetDownloadAsync(id.Text, TimeSpan.FromMilliseconds(400), CancellationToken.None);
        Assert.False(running.Finished);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(350), $"answered after {watch.Elapsed}");

        // A wait that outlasts the download is answered when it ends.
        var done = await control.GetDownloadAsync(id.Text, TransferControlService.MaxWait, CancellationToken.None);
        var answeredAt = Stopwatch.GetTimestamp();
        while (!done.Finished)
        {
            done = await control.GetDownloadAsync(id.Text, TransferControlService.MaxWait, CancellationToken.None);
            answeredAt = Stopwatch.GetTimestamp();
        }
        Assert.Equal("released", done.State);
        var late = Stopwatch.GetElapsedTime(await endedAt, answeredAt);
        Assert.True(late < TimeSpan.FromSeconds(1), $"answered {late} after the download ended");
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(done.Path!));
    }
}

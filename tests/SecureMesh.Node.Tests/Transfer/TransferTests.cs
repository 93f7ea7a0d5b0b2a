using System.Collections.Concurrent;
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
}

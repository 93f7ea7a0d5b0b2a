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
}

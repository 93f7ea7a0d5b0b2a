using SecureMesh.Core.Wire;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Transfer;

public sealed class ResilienceTests
{
    [Fact]
    public async Task A_silent_peers_chunks_time_out_and_move_to_the_others()
    {
        await using var downloader = TransferNode.Start(TransferNode.Fast(o => o.ChunkTimeout = TimeSpan.FromMilliseconds(300)));
        await using var honest = TransferNode.Start();
        var path = honest.WriteFile("s.bin", 20 * TransferNode.ChunkSize);
        var id = await honest.ShareAsync(path);
        var manifest = honest.Db.Catalog.FindByContentId(id.Text)[0].Manifest.ToArray();
        await using var silent = await ScriptedSeeder.StartAsync(downloader, request => request switch
        {
            ManifestRequest m => new ManifestResponse(m.RequestId, manifest),
            HaveRequest h => HaveResponse.ForAll(h.RequestId, 20),
            _ => null, // never answers a chunk request
        });
        await downloader.ConnectAsync(honest);

        var handle = downloader.Transfer.StartDownload(id);
        var result = await handle.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(result.Path!));
        Assert.DoesNotContain(downloader.Db.Audit.List(), e => e.Event == "chunk.rejected");
    }

    [Fact]
    public async Task Content_blocked_mid_download_stops_it_and_deletes_its_data()
    {
        await using var seeder = TransferNode.Start(TransferNode.Fast(o => o.UploadLimit = 64 * 1024));
        await using var downloader = TransferNode.Start();
        var id = await seeder.ShareAsync(seeder.WriteFile("b.bin", 32 * TransferNode.ChunkSize));
        await downloader.ConnectAsync(seeder);
        var handle = downloader.Transfer.StartDownload(id);
        await Wait.UntilAsync(() => handle.Progress.BytesDone > 0, TimeSpan.FromSeconds(10), "the first chunk");
        downloader.Db.Trust.BlockContent(id.Text, "test");
        var result = await handle.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(DownloadState.Failed, result.State);
        Assert.Contains("blocked", result.Reason, StringComparison.Ordinal);
        Assert.Equal(QuarantineState.Deleted, downloader.Db.Quarantine.Get(result.QuarantineId!.Value)!.State);
        Assert.False(File.Exists(downloader.Transfer.Quarantine.PartPath(result.QuarantineId!.Value)));
        // And it is never requested again.
        var again = await downloader.Transfer.StartDownload(id).Completion;
        Assert.Equal(DownloadState.Failed, again.State);
        Assert.Contains("blocked", again.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_peer_speaking_another_protocol_version_gets_an_error_and_is_closed()
    {
        await using var node = TransferNode.Start();
        var identity = Core.Identity.NodeIdentity.Generate();
        node.Db.Trust.AddPeer(identity.PeerId, null, null, trusted: true);
        await using var connection = await Network.PeerLink.DialAsync(identity, node.Node.LocalEndPoint, node.PeerId, TimeSpan.FromSeconds(3), CancellationToken.None);
        await connection.SendAsync(WireCodec.Encode(new Hello(0, 99, [], WireLimits.DefaultMaxMessageSize)), CancellationToken.None);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        Assert.IsType<Hello>(WireCodec.Decode(await connection.ReceiveAsync(cts.Token)));
        var error = Assert.IsType<ErrorMessage>(WireCodec.Decode(await connection.ReceiveAsync(cts.Token)));
        Assert.Equal(WireErrorCode.UnsupportedVersion, error.Code);
        Assert.True(await Wait.ClosedByRemoteAsync(connection, TimeSpan.FromSeconds(5)));
        identity.Dispose();
    }
}

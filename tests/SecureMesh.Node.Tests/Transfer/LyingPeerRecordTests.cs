using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// Issue 14, finding 11: the lying-peer ban count lived in memory (a restart forgave every lie), and a peer's error
/// text was stored and logged raw.
/// </summary>
public sealed class LyingPeerRecordTests
{
    [Fact]
    public async Task Bad_chunks_counted_before_a_restart_still_count_towards_the_ban_after_it()
    {
        // One lane, so each download meets exactly one lie before the liar is dropped from it.
        var options = TransferNode.Fast(o =>
        {
            o.BanAfter = 3;
            o.Depth = 1;
            o.LanesPerRequest = 1;
        });
        var downloader = TransferNode.Start(options);
        try
        {
            var data = new byte[2 * TransferNode.ChunkSize];
            new Random(3).NextBytes(data);
            var tree = MerkleTree.Build(TrustedPeerBoundsTests.Leaves(data), data.Length, TransferNode.ChunkSize);
            using var publisher = NodeIdentity.Generate();
            var manifest = Manifest.Create(publisher, tree, "x.bin", DateTimeOffset.UtcNow).Encode();
            await using var liar = await ScriptedSeeder.StartAsync(downloader, request => request switch
            {
                ManifestRequest m => new ManifestResponse(m.RequestId, manifest),
                HaveRequest h => HaveResponse.ForAll(h.RequestId, 2),
                ChunkRequest c => new ChunkResponse(c.RequestId, c.Index, new byte[TransferNode.ChunkSize], tree.GetProof(c.Index)),
                _ => null,
            });
            for (var i = 0; i < 2; i++)
            {
                var result = await downloader.Transfer.StartDownload(tree.ContentId).Completion.WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Equal(DownloadState.Failed, result.State);
            }
            Assert.Equal(2, downloader.Db.Audit.List().Count(e => e.Event == "chunk.rejected" && e.PeerId == liar.PeerId.Text));
            Assert.Equal(Storage.PeerState.Trusted, downloader.Db.Trust.GetPeer(liar.PeerId)!.State);

            await downloader.StopAsync();
            await using var restarted = TransferNode.Start(options, home: downloader.Home, identity: downloader.Identity);
            await restarted.Node.ConnectAsync(liar.PeerId, liar.EndPoint, CancellationToken.None);
            await Wait.UntilAsync(() => restarted.Transfer.OpenSessions().Count == 1, TimeSpan.FromSeconds(10), "the liar's session after the restart");

            var third = await restarted.Transfer.StartDownload(tree.ContentId).Completion.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(DownloadState.Failed, third.State);
            Assert.Contains(restarted.Db.Audit.List(), e => e.Event == "peer.banned" && e.PeerId == liar.PeerId.Text
                && e.Detail.Contains("sent 3 chunks that failed verification", StringComparison.Ordinal));
            Assert.Equal(Storage.PeerState.Blocked, restarted.Db.Trust.GetPeer(liar.PeerId)!.State);
        }
        finally
        {
            await downloader.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_peers_error_text_reaches_the_result_cleaned_and_cut()
    {
        await using var downloader = TransferNode.Start();
        // Terminal escapes, a forged second log line, a bidi override, an invisible tag character, then padding.
        var hostile = "\u001b[2J\u001b[31mowned\r\n2026-01-01 INFO peer trusted\u202Egnp.exe\U000E0041" + new string('x', 400);
        await using var liar = await ScriptedSeeder.StartAsync(downloader, request =>
            new ErrorMessage(request.RequestId, WireErrorCode.NotFound, hostile));
        var id = ContentId.FromHash(new byte[32]);

        var result = await downloader.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(DownloadState.Failed, result.State);
        var reason = result.Reason!;
        Assert.Contains("?[2J?[31mowned??2026-01-01 INFO peer trusted?gnp.exe?", reason, StringComparison.Ordinal);
        Assert.DoesNotContain(reason, c => char.IsControl(c) || char.IsSurrogate(c) || c is '\u202E' or '\u2028' or '\u2029');
        Assert.DoesNotContain(new string('x', 300), reason, StringComparison.Ordinal);
    }
}

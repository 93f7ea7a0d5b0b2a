using System.Buffers;
using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core.Content;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

public sealed class EngineUnitTests
{
    [Fact]
    public async Task Token_bucket_holds_a_sender_to_the_rate_after_the_burst()
    {
        var time = new FakeTimeProvider();
        var bucket = new TokenBucket(time);
        // Fresh bucket: empty, so 1000 bytes at 1000 B/s is one second of debt.
        var first = bucket.TakeAsync(1000, 1000, CancellationToken.None).AsTask();
        Assert.False(first.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(first.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await first;
        // Unlimited never waits.
        Assert.True(bucket.TakeAsync(1 << 30, 0, CancellationToken.None).IsCompleted);
        // A quarter second of burst accumulates, no more.
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(bucket.TakeAsync(250, 1000, CancellationToken.None).IsCompleted);
        Assert.False(bucket.TakeAsync(1, 1000, CancellationToken.None).IsCompleted);
    }

    [Fact]
    public void Pooled_buffer_writer_grows_and_keeps_what_was_written()
    {
        using var writer = new PooledBufferWriter(4);
        WireCodec.Encode(new SearchRequest(7, new string('q', 200), 5), writer);
        Assert.Equal(WireCodec.Encode(new SearchRequest(7, new string('q', 200), 5)), writer.WrittenMemory.ToArray());
    }

    [Fact]
    public void Manifest_names_are_cut_to_255_bytes_on_a_character_boundary()
    {
        var name = new string('é', 200) + ".txt";
        var cut = ShareService.ManifestName(name);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(cut) <= Manifest.MaxNameBytes);
        Assert.Equal("file", ShareService.ManifestName(""));
    }

    [Fact]
    public async Task Served_chunks_are_exactly_what_WireCodec_encodes()
    {
        await using var seeder = TransferNode.Start();
        await using var peer = TransferNode.Start();
        var data = new byte[(2 * TransferNode.ChunkSize) + 1000];
        new Random(2).NextBytes(data);
        var path = Path.Combine(seeder.Home, "f.bin");
        await File.WriteAllBytesAsync(path, data);
        var id = await seeder.ShareAsync(path);
        await peer.ConnectAsync(seeder);
        var session = Assert.Single(peer.Transfer.OpenSessions());
        var tree = MerkleTree.Build(seeder.Db.Catalog.FindByContentId(id.Text)[0].Leaves.Span, data.Length, TransferNode.ChunkSize);
        for (var i = 0; i < 3; i++)
        {
            using var reply = await session.GetChunkAsync(id, i, CancellationToken.None);
            Assert.Equal(i, reply.Index);
            var expected = data.AsSpan(i * TransferNode.ChunkSize, ChunkLayout.ChunkLength(data.Length, TransferNode.ChunkSize, i));
            Assert.True(expected.SequenceEqual(reply.Data.Span));
            Assert.Equal(tree.GetProof(i).Hashes.ToArray(), reply.Proof.Hashes.ToArray());
            Assert.True(ContentVerifier.VerifyChunk(id, data.Length, TransferNode.ChunkSize, i, reply.Data.Span, reply.Proof));
        }
        var have = await session.GetHaveAsync(id, 3, CancellationToken.None);
        Assert.True(have.IsComplete);
        Assert.Equal(3, have.ChunkCount);
        // A chunk map for another number of chunks is refused before it is expanded.
        var wrong = await Assert.ThrowsAsync<Core.SecureMeshException>(() => session.GetHaveAsync(id, 5, CancellationToken.None));
        Assert.Equal(Core.SecureMeshErrorKind.Protocol, wrong.Kind);
    }

    [Fact]
    public async Task Many_requests_are_in_flight_on_one_connection_and_pair_up_by_id()
    {
        await using var seeder = TransferNode.Start();
        await using var peer = TransferNode.Start();
        var id = await seeder.ShareAsync(seeder.WriteFile("m.bin", 40 * TransferNode.ChunkSize));
        await peer.ConnectAsync(seeder);
        var session = Assert.Single(peer.Transfer.OpenSessions());
        var replies = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => session.GetChunkAsync(id, i, CancellationToken.None)));
        for (var i = 0; i < replies.Length; i++)
        {
            Assert.Equal(i, replies[i].Index);
            Assert.True(ContentVerifier.VerifyChunk(id, 40 * TransferNode.ChunkSize, TransferNode.ChunkSize, i, replies[i].Data.Span, replies[i].Proof));
            replies[i].Dispose();
        }
    }

    [Fact]
    public async Task A_file_changed_on_disk_with_a_new_size_is_refused_and_re_indexed()
    {
        await using var seeder = TransferNode.Start();
        await using var peer = TransferNode.Start();
        var path = seeder.WriteFile("c.bin", 4 * TransferNode.ChunkSize);
        var id = await seeder.ShareAsync(path);
        await peer.ConnectAsync(seeder);
        await File.AppendAllTextAsync(path, "more");
        var session = Assert.Single(peer.Transfer.OpenSessions());
        var e = await Assert.ThrowsAsync<PeerRequestException>(() => session.GetChunkAsync(id, 0, CancellationToken.None));
        Assert.Equal(WireErrorCode.Changed, e.Code);
        await seeder.Transfer.Shares.WhenIdleAsync();
        var entry = seeder.Db.Catalog.Get(path)!;
        Assert.Equal((4 * TransferNode.ChunkSize) + 4, entry.Size);
        Assert.NotEqual(id.Text, entry.ContentId);
        // The old content is gone from this seeder, the new one is served.
        await Assert.ThrowsAsync<PeerRequestException>(() => session.GetManifestAsync(id, CancellationToken.None));
        var manifest = Manifest.Decode(await session.GetManifestAsync(ContentId.Parse(entry.ContentId), CancellationToken.None));
        Assert.True(manifest.VerifyFrom(seeder.PeerId));
    }

    [Fact]
    public async Task The_connector_dials_trusted_peers_and_redials_after_a_drop()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        a.Trust(b);
        b.Trust(a);
        await using var connector = new PeerConnector(a.Node);
        Assert.Equal(1, await connector.ConnectAllAsync(TimeSpan.FromSeconds(5), CancellationToken.None));
        connector.Start();
        var session = a.Node.GetSession(b.PeerId)!;
        session.RequestClose("test drop");
        await Wait.UntilAsync(() => a.Node.GetSession(b.PeerId) is { } s && s != session, TimeSpan.FromSeconds(10), "a redial");
        await Wait.UntilAsync(() => a.Transfer.OpenSessions().Count == 1, TimeSpan.FromSeconds(10), "the protocol session");
    }

    [Fact]
    public async Task Connecting_all_while_a_dial_of_the_same_peer_is_under_way_waits_for_it_and_dials_again_when_it_failed()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        a.Trust(b);
        b.Db.Trust.AddPeer(a.PeerId, "a", [$"nas.example:{a.Node.LocalEndPoint.Port}"], trusted: true);
        // A port nobody listens on: take one and let it go.
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var dead = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        // The first dial is held in its name lookup and then finds only the dead port (where the peer was); later
        // lookups find where it is now.
        var gate = new TaskCompletionSource();
        var resolving = new TaskCompletionSource();
        var lookups = 0;
        b.Node.ResolveForTest = async (_, ct) =>
        {
            if (Interlocked.Increment(ref lookups) == 1)
            {
                resolving.SetResult();
                await gate.Task.WaitAsync(ct);
                return [new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, dead)];
            }
            return [new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, a.Node.LocalEndPoint.Port)];
        };
        await using var connector = new PeerConnector(b.Node);
        var first = connector.ConnectAllAsync(TimeSpan.FromSeconds(20), CancellationToken.None);
        await resolving.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // A second caller (the background loop's dial and a one-off's connect-all overlap the same way) must not return
        // as if done while the first dial is still under way.
        var second = connector.ConnectAllAsync(TimeSpan.FromSeconds(20), CancellationToken.None);
        gate.SetResult();
        Assert.Equal(1, await second.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.NotNull(b.Node.GetSession(a.PeerId));
        await first.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(lookups >= 2, $"the second caller dialled again after the first dial failed ({lookups} lookups)");
    }

    [Fact]
    public async Task Two_connectors_dialing_each_other_at_once_settle_on_one_working_session()
    {
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        a.Trust(b);
        b.Trust(a);
        await using var ca = new PeerConnector(a.Node);
        await using var cb = new PeerConnector(b.Node);
        await Task.WhenAll(ca.ConnectAllAsync(TimeSpan.FromSeconds(5), CancellationToken.None), cb.ConnectAllAsync(TimeSpan.FromSeconds(5), CancellationToken.None));
        ca.Start();
        cb.Start();
        await Wait.UntilAsync(() => a.Transfer.OpenSessions().Count == 1 && b.Transfer.OpenSessions().Count == 1, TimeSpan.FromSeconds(20), "one session each way");
        var id = await a.ShareAsync(a.WriteFile("x.bin", 50_000));
        var result = await b.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Single(a.Node.Sessions);
        Assert.Single(b.Node.Sessions);
    }
}

using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// Many cheap identities (Sybil) and a trusted peer that asks for far more than it reads: both are held to fixed
/// budgets, and an honest peer is still served meanwhile.
/// </summary>
public sealed class AbuseTests
{
    [Fact]
    public async Task Many_fresh_peer_ids_from_one_address_get_no_data_and_only_a_bounded_number_is_recorded()
    {
        // A handshake budget of 11, and the node's clock stands still: no budget refills and no handshake deadline fires
        // during the test, so the numbers below do not depend on how fast this machine is. (On the real clock, a loaded
        // machine took longer than the stranger budget's 5 s refill for the loop and recorded an eleventh stranger, or
        // longer than the 3 s handshake deadline for one handshake and counted 10 completed.)
        var frozen = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var node = TransferNode.Start(handshakeBurst: 11, nodeTime: frozen);
        var id = await node.ShareAsync(node.WriteFile("secret-plans.bin", 3 * TransferNode.ChunkSize));
        const int strangers = 30;
        var completed = 0;
        var refused = 0;
        var receivedAnything = 0;
        for (var i = 0; i < strangers; i++)
        {
            using var sybil = NodeIdentity.Generate();
            PeerLink connection;
            try
            {
                // A deadline no loaded machine reaches: a refused dial is closed at once, so it costs no waiting.
                connection = await PeerLink.DialAsync(sybil, node.Node.LocalEndPoint, node.PeerId, TimeSpan.FromSeconds(30), CancellationToken.None);
            }
            catch (SecureMeshException)
            {
                refused++;
                continue;
            }
            await using (connection)
            {
                completed++;
                try
                {
                    await connection.SendAsync(WireCodec.Encode(new Hello(0, WireLimits.ProtocolVersion, ["search"], WireLimits.DefaultMaxMessageSize)), CancellationToken.None);
                    await connection.SendAsync(WireCodec.Encode(new SearchRequest(1, "secret", 10)), CancellationToken.None);
                    await connection.SendAsync(WireCodec.Encode(new ChunkRequest(2, id, 0)), CancellationToken.None);
                }
                catch (SecureMeshException)
                {
                    // already cut
                }
                // The node hangs up on a stranger at once; the deadline only bounds a node that would not.
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await connection.ReceiveAsync(cts.Token);
                    receivedAnything++;
                }
                catch (SecureMeshException) when (!cts.IsCancellationRequested)
                {
                    // closed without a word: what a stranger gets
                }
            }
        }

        Assert.Equal(0, receivedAnything);
        // The stranger budget per address is a burst of 10: those are recorded; the eleventh completes its handshake
        // but is refused without being stored; every stranger's handshake spent a token of the address's handshake
        // budget (11 here, not refilled on the frozen clock), so everything after it is refused before the handshake.
        Assert.Equal(11, completed);
        Assert.Equal(strangers - 11, refused);
        Assert.Equal(10, node.Db.Trust.ListPeers(PeerState.Pending).Count);
        Assert.Equal(10, node.Db.Audit.List().Count(e => e.Event == "handshake.pending"));
        Assert.Single(node.Db.Audit.List(), e => e.Event == "handshake.refused" && e.Detail.Contains("stranger budget", StringComparison.Ordinal));
        Assert.Empty(node.Node.Sessions);

        // A trusted peer on another address is not held up by the flood.
        using var friend = NodeIdentity.Generate();
        node.Db.Trust.AddPeer(friend.PeerId, "friend", null, trusted: true);
        await using var session = await DialFromAsync(IPAddress.Parse("127.0.0.2"), friend, node);
        await session.SendAsync(WireCodec.Encode(new Hello(0, WireLimits.ProtocolVersion, ["search"], WireLimits.DefaultMaxMessageSize)), CancellationToken.None);
        await session.SendAsync(WireCodec.Encode(new SearchRequest(1, "secret", 10)), CancellationToken.None);
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        Assert.IsType<Hello>(WireCodec.Decode(await session.ReceiveAsync(patience.Token)));
        var hit = Assert.Single(Assert.IsType<SearchResponse>(WireCodec.Decode(await session.ReceiveAsync(patience.Token))).Results);
        Assert.Equal(id, hit.ContentId);
    }

    [Fact]
    public async Task A_trusted_peer_flooding_chunk_requests_is_held_to_its_serve_slots_and_rate_and_others_are_still_served()
    {
        var served = new ConcurrentDictionary<string, int>();
        await using var seeder = TransferNode.Start(TransferNode.Fast(o =>
        {
            o.UploadLimit = 64 * 1024;
            o.MaxConcurrentServes = 16;
            o.Served = (peer, _, _) => served.AddOrUpdate(peer, 1, (_, n) => n + 1);
        }));
        var id = await seeder.ShareAsync(seeder.WriteFile("big.bin", 64 * TransferNode.ChunkSize));
        await using var flooder = await RawPeer.ConnectAsync(seeder);

        // 5,000 requests, none of the answers read: the seeder must neither start them all nor buffer their chunks.
        using var stop = new CancellationTokenSource();
        var floodStart = DateTime.UtcNow;
        var flood = Task.Run(async () =>
        {
            for (uint i = 1; i <= 5000 && !stop.IsCancellationRequested; i++)
            {
                await flooder.Connection.SendAsync(WireCodec.Encode(new ChunkRequest(i, id, i % 64)), stop.Token);
            }
        });
        await Wait.UntilAsync(() => served.GetValueOrDefault(flooder.Identity.PeerId.Text) >= 16, TimeSpan.FromSeconds(5), "the first requests to be served");
        await Task.Delay(1500);
        var count = served.GetValueOrDefault(flooder.Identity.PeerId.Text);
        var elapsed = (DateTime.UtcNow - floodStart).TotalSeconds;
        // 16 slots, plus what 64 KiB/s (4 chunks a second, a quarter second of burst) lets finish meanwhile.
        Assert.True(count <= 16 + 2 + (int)Math.Ceiling(elapsed * 4), $"{count} requests started in {elapsed:0.0} s");

        // Meanwhile an honest trusted peer is answered at once: it has its own slots and its own rate.
        await using var honest = TransferNode.Start();
        await honest.ConnectAsync(seeder);
        var session = Assert.Single(honest.Transfer.OpenSessions());
        var hits = await session.SearchAsync("big", 10, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(3));
        Assert.Equal(id, Assert.Single(hits).ContentId);
        using (var chunk = await session.GetChunkAsync(id, 5, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(3)))
        {
            Assert.Equal(5, chunk.Index);
        }
        await stop.CancelAsync();
        try
        {
            await flood.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is OperationCanceledException or SecureMeshException)
        {
        }
    }

    private static async Task<PeerLink> DialFromAsync(IPAddress local, NodeIdentity identity, TransferNode node)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(local, 0));
        await socket.ConnectAsync(node.Node.LocalEndPoint);
        return await PeerLink.UpgradeAsync(identity, new NetworkStream(socket, ownsSocket: true), node.PeerId, TimeSpan.FromSeconds(3), CancellationToken.None);
    }
}

using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.Identify;
using SecureMesh.Core.Libp2p.Ping;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;
using SecureMesh.Node.Tests.Transfer;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests;

/// <summary>Issue 16: the node's connections are libp2p connections; the router, its policy hook, caps and the tie-break.</summary>
public sealed class HostTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private sealed class DenyPing : IProtocolPolicy
    {
        public bool Allows(PeerSession session, string protocol) => protocol != PingService.ProtocolId;
    }

    [Fact]
    public async Task A_protocol_the_policy_denies_is_answered_na_like_one_the_node_does_not_speak()
    {
        await using var node = TestNode.Start(policy: new DenyPing());
        using var friend = NodeIdentity.Generate();
        node.Db.Trust.AddPeer(friend.PeerId, trusted: true);
        await using var link = await Wait.DialAsync(friend, node);
        await Wait.UntilAsync(() => node.Node.GetSession(friend.PeerId) is not null, Patience, "the session");

        var denied = await Assert.ThrowsAsync<SecureMeshException>(() => link.OpenStreamAsync(PingService.ProtocolId, CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.NotFound, denied.Kind);
        var unknown = await Assert.ThrowsAsync<SecureMeshException>(() => link.OpenStreamAsync("/made/up/1.0.0", CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.NotFound, unknown.Kind);

        // Identify still answers, and does not announce the denied protocol to this peer.
        await using var stream = await link.OpenStreamAsync(IdentifyService.ProtocolId, CancellationToken.None);
        var info = await new IdentifyService().RequestAsync(stream, node.Identity.PeerId, CancellationToken.None);
        Assert.Contains(IdentifyService.ProtocolId, info.Protocols);
        Assert.DoesNotContain(PingService.ProtocolId, info.Protocols);
        Assert.StartsWith("securemesh/", info.AgentVersion, StringComparison.Ordinal);
        Assert.Null(node.Node.GetSession(friend.PeerId)!.CloseReason);
    }

    [Fact]
    public async Task Identify_and_ping_are_served_to_a_trusted_peer()
    {
        await using var node = TestNode.Start();
        using var friend = NodeIdentity.Generate();
        node.Db.Trust.AddPeer(friend.PeerId, trusted: true);
        await using var link = await Wait.DialAsync(friend, node);
        await using var ping = await link.OpenStreamAsync(PingService.ProtocolId, CancellationToken.None);
        var service = new PingService();
        for (var i = 0; i < 3; i++)
        {
            Assert.True(await service.PingAsync(ping, CancellationToken.None) >= TimeSpan.Zero);
        }
        await using var id = await link.OpenStreamAsync(IdentifyService.ProtocolId, CancellationToken.None);
        var info = await new IdentifyService().RequestAsync(id, node.Identity.PeerId, CancellationToken.None);
        Assert.Contains(PingService.ProtocolId, info.Protocols);
        Assert.NotNull(info.ObservedAddr);
        Assert.Equal(MultiaddrBytes.From(node.EndPoint), Assert.Single(info.ListenAddrs));
    }

    [Fact]
    public async Task One_session_stream_per_connection_and_only_from_the_dialler()
    {
        await using var node = TransferNode.Start();
        using var friend = NodeIdentity.Generate();
        node.Db.Trust.AddPeer(friend.PeerId, null, null, trusted: true);
        await using var link = await PeerLink.DialAsync(friend, node.Node.LocalEndPoint, node.PeerId, Patience, CancellationToken.None);
        await link.SendAsync(WireCodec.Encode(new Hello(0, WireLimits.ProtocolVersion, [], WireLimits.DefaultMaxMessageSize)), CancellationToken.None);
        using (var cts = new CancellationTokenSource(Patience))
        {
            Assert.IsType<Hello>(WireCodec.Decode(await link.ReceiveAsync(cts.Token)));
        }

        // A second transfer stream on the same connection is negotiated but never served: it ends without a hello.
        await using var second = new MessageStream(await link.OpenStreamAsync(TransferProtocol.Transfer, CancellationToken.None));
        await second.SendAsync(WireCodec.Encode(new Hello(0, WireLimits.ProtocolVersion, [], WireLimits.DefaultMaxMessageSize)), CancellationToken.None);
        using (var cts = new CancellationTokenSource(Patience))
        {
            try
            {
                Assert.Null(await second.ReceiveAsync(cts.Token));
            }
            catch (SecureMeshException)
            {
                // reset: as good as ended
            }
            Assert.False(cts.IsCancellationRequested, "the second session stream was kept open");
        }
        // The first one still works.
        await link.SendAsync(WireCodec.Encode(new SearchRequest(7, "x", 1)), CancellationToken.None);
        using (var cts = new CancellationTokenSource(Patience))
        {
            Assert.Equal(7u, Assert.IsType<SearchResponse>(WireCodec.Decode(await link.ReceiveAsync(cts.Token))).RequestId);
        }
    }

    [Fact]
    public async Task A_search_stream_serves_one_search_request_and_nothing_else_and_at_most_eight_at_once()
    {
        await using var node = TransferNode.Start();
        var id = await node.ShareAsync(node.WriteFile("needle.bin", 2 * TransferNode.ChunkSize));
        using var friend = NodeIdentity.Generate();
        node.Db.Trust.AddPeer(friend.PeerId, null, null, trusted: true);
        await using var link = await PeerLink.DialAsync(friend, node.Node.LocalEndPoint, node.PeerId, Patience, CancellationToken.None);

        await using (var search = new MessageStream(await link.OpenStreamAsync(TransferProtocol.Search, CancellationToken.None)))
        {
            await search.SendAsync(WireCodec.Encode(new SearchRequest(1, "needle", 10)), CancellationToken.None);
            using var answer = await search.ReceiveAsync(CancellationToken.None);
            Assert.Equal(id, Assert.Single(Assert.IsType<SearchResponse>(WireCodec.Decode(answer!.Memory.Span)).Results).ContentId);
            Assert.Null(await search.ReceiveAsync(CancellationToken.None));
        }

        // A chunk request on a search stream is refused, not served.
        await using (var wrong = new MessageStream(await link.OpenStreamAsync(TransferProtocol.Search, CancellationToken.None)))
        {
            await wrong.SendAsync(WireCodec.Encode(new ChunkRequest(2, id, 0)), CancellationToken.None);
            using var answer = await wrong.ReceiveAsync(CancellationToken.None);
            Assert.Equal(WireErrorCode.BadRequest, Assert.IsType<ErrorMessage>(WireCodec.Decode(answer!.Memory.Span)).Code);
        }

        // Eight silent search streams at once are held; the ninth is cut at once.
        var silent = new List<MessageStream>();
        for (var i = 0; i < TransferService.MaxInboundSearchStreams; i++)
        {
            silent.Add(new MessageStream(await link.OpenStreamAsync(TransferProtocol.Search, CancellationToken.None)));
        }
        await Task.Delay(300);
        await using var ninth = new MessageStream(await link.OpenStreamAsync(TransferProtocol.Search, CancellationToken.None));
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
        {
            try
            {
                Assert.Null(await ninth.ReceiveAsync(cts.Token));
            }
            catch (SecureMeshException)
            {
            }
            Assert.False(cts.IsCancellationRequested, "a ninth concurrent search stream was kept");
        }
        foreach (var s in silent)
        {
            await s.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(true, ConnectionDirection.Inbound, ConnectionDirection.Outbound, true)]
    [InlineData(true, ConnectionDirection.Outbound, ConnectionDirection.Inbound, false)]
    [InlineData(false, ConnectionDirection.Inbound, ConnectionDirection.Outbound, false)]
    [InlineData(false, ConnectionDirection.Outbound, ConnectionDirection.Inbound, true)]
    [InlineData(true, ConnectionDirection.Outbound, ConnectionDirection.Outbound, false)]
    [InlineData(false, ConnectionDirection.Inbound, ConnectionDirection.Inbound, false)]
    public void The_tie_break_keeps_the_connection_dialled_by_the_smaller_peer_id_on_both_sides(bool weAreSmaller, ConnectionDirection existing, ConnectionDirection incoming, bool keepNew)
    {
        using var a = NodeIdentity.Generate();
        using var b = NodeIdentity.Generate();
        var (small, large) = string.CompareOrdinal(a.PeerId.Text, b.PeerId.Text) < 0 ? (a.PeerId, b.PeerId) : (b.PeerId, a.PeerId);
        var (us, peer) = weAreSmaller ? (small, large) : (large, small);
        Assert.Equal(keepNew, MeshNode.KeepsNewConnection(us, peer, existing, incoming));
        // The other side sees the same two connections with the directions swapped, and must decide the same way.
        static ConnectionDirection Flip(ConnectionDirection d) => d == ConnectionDirection.Inbound ? ConnectionDirection.Outbound : ConnectionDirection.Inbound;
        if (existing != incoming)
        {
            Assert.Equal(keepNew, MeshNode.KeepsNewConnection(peer, us, Flip(existing), Flip(incoming)));
        }
    }

    [Fact]
    public async Task Simultaneous_dials_leave_one_connection_that_both_sides_agree_on()
    {
        for (var round = 0; round < 3; round++)
        {
            await using var a = TestNode.Start();
            await using var b = TestNode.Start();
            a.Db.Trust.AddPeer(b.Identity.PeerId, trusted: true);
            b.Db.Trust.AddPeer(a.Identity.PeerId, trusted: true);
            var dials = new[]
            {
                Task.Run(() => a.Node.ConnectAsync(b.Identity.PeerId, b.EndPoint, CancellationToken.None)),
                Task.Run(() => b.Node.ConnectAsync(a.Identity.PeerId, a.EndPoint, CancellationToken.None)),
            };
            try
            {
                await Task.WhenAll(dials);
            }
            catch (SecureMeshException)
            {
                // A dial may lose the tie-break after its handshake; the other connection is the one kept.
            }
            await Wait.UntilAsync(() => a.Node.GetSession(b.Identity.PeerId) is { } sa && b.Node.GetSession(a.Identity.PeerId) is { } sb
                && sa.ShortAuthString == sb.ShortAuthString && sa.CloseReason is null && sb.CloseReason is null, Patience, "one agreed connection");
            await Task.Delay(300);
            var kept = a.Node.GetSession(b.Identity.PeerId)!;
            Assert.Equal(kept.ShortAuthString, b.Node.GetSession(a.Identity.PeerId)!.ShortAuthString);
            Assert.Single(a.Node.Sessions);
            Assert.Single(b.Node.Sessions);
        }
    }
}

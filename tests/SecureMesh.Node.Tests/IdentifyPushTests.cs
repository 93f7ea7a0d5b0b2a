using System.Net;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.Identify;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.Tests;

/// <summary>Identify push (<c>/ipfs/id/push/1.0.0</c>) between real nodes on 127.0.0.1: sent when what we announce changes, applied when received.</summary>
public sealed class IdentifyPushTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private static async Task<(TestNode A, TestNode B)> ConnectedPairAsync()
    {
        // The relay clients look at their relays once, at start, and then not again: a, having dialled b (a trusted peer
        // offering relay service), would otherwise reserve on it within ClientInterval (2 s) and push its new circuit
        // address, a push these tests do not make and must not see (it replaced b's view of a during the 500 ms below).
        var quietRelayClient = new SecureMesh.Node.Relay.RelayOptions { ClientInterval = Timeout.InfiniteTimeSpan };
        var a = TestNode.Start(relay: quietRelayClient);
        var b = TestNode.Start(relay: quietRelayClient);
        a.Db.Trust.AddPeer(b.Identity.PeerId, trusted: true);
        b.Db.Trust.AddPeer(a.Identity.PeerId, trusted: true);
        await a.Node.ConnectAsync(b.Identity.PeerId, b.EndPoint, CancellationToken.None);
        // Each side has asked the other's identify once the sessions are up.
        await Wait.UntilAsync(() => b.Node.GetSession(a.Identity.PeerId)?.Identified is not null
            && a.Node.GetSession(b.Identity.PeerId)?.Identified is not null, Patience, "identify both ways");
        return (a, b);
    }

    [Fact]
    public async Task A_protocol_added_after_the_connection_is_pushed_to_the_peer()
    {
        var (a, b) = await ConnectedPairAsync();
        await using var _ = a;
        await using var __ = b;
        const string Extra = "/securemesh/test-extra/1.0.0";
        Assert.DoesNotContain(Extra, b.Node.GetSession(a.Identity.PeerId)!.Identified!.Protocols);

        a.Node.AddProtocol(new StreamProtocol(Extra, (_, _, _) => Task.CompletedTask));

        await Wait.UntilAsync(() => b.Node.GetSession(a.Identity.PeerId)?.Identified?.Protocols.Contains(Extra) == true, Patience, "the pushed protocol");
        var known = b.Node.GetSession(a.Identity.PeerId)!.Identified!;
        Assert.Contains(IdentifyService.PushProtocolId, known.Protocols);
        Assert.StartsWith("securemesh/", known.AgentVersion, StringComparison.Ordinal); // fields not pushed stay
        Assert.Throws<ArgumentException>(() => a.Node.AddProtocol(new StreamProtocol(Extra, (_, _, _) => Task.CompletedTask)));
    }

    [Fact]
    public async Task New_listen_addresses_are_pushed_and_unchanged_ones_are_not()
    {
        var (a, b) = await ConnectedPairAsync();
        await using var _ = a;
        await using var __ = b;
        var port = a.EndPoint.Port;
        var before = b.Node.GetSession(a.Identity.PeerId)!.Identified!;
        Assert.Equal([MultiaddrBytes.From(a.EndPoint)], before.ListenAddrs);

        // The same addresses looked at again: nothing is sent.
        a.Node.AddressCheckInterval = TimeSpan.FromMilliseconds(50);
        await Task.Delay(500);
        Assert.Same(before, b.Node.GetSession(a.Identity.PeerId)!.Identified);

        // An interface gained an address (as under a node bound to 0.0.0.0): the peer learns it without asking.
        var moved = new IPEndPoint(IPAddress.Parse("127.0.0.2"), port);
        a.Node.ListenEndPointsOverride = () => [a.EndPoint, moved];
        await Wait.UntilAsync(() => b.Node.GetSession(a.Identity.PeerId)?.Identified?.ListenAddrs.Count == 2, Patience, "the pushed addresses");
        Assert.Equal([MultiaddrBytes.From(a.EndPoint), MultiaddrBytes.From(moved)], b.Node.GetSession(a.Identity.PeerId)!.Identified!.ListenAddrs);
    }

    [Fact]
    public async Task A_push_carrying_someone_elses_key_is_ignored_and_a_valid_one_is_applied()
    {
        await using var node = TestNode.Start();
        using var friend = NodeIdentity.Generate();
        using var impostor = NodeIdentity.Generate();
        node.Db.Trust.AddPeer(friend.PeerId, trusted: true);
        await using var link = await Wait.DialAsync(friend, node);
        await Wait.UntilAsync(() => node.Node.GetSession(friend.PeerId) is not null, Patience, "the session");
        var service = new IdentifyService();
        var elsewhere = MultiaddrBytes.From(new IPEndPoint(IPAddress.Parse("127.0.0.9"), 4747));

        var forged = await link.OpenStreamAsync(IdentifyService.PushProtocolId, CancellationToken.None);
        await service.PushAsync(forged, IdentifyService.Describe(impostor, [elsewhere], ["/forged/1.0.0"], null), CancellationToken.None);
        await StreamClosing.CloseAsync(forged, Patience, TimeProvider.System); // FIN, then the node's end: the push was read
        await Task.Delay(200);
        Assert.Null(node.Node.GetSession(friend.PeerId)!.Identified);

        var honest = await link.OpenStreamAsync(IdentifyService.PushProtocolId, CancellationToken.None);
        await service.PushAsync(honest, IdentifyService.Describe(friend, [elsewhere], ["/honest/1.0.0"], null), CancellationToken.None);
        await StreamClosing.CloseAsync(honest, Patience, TimeProvider.System);
        await Wait.UntilAsync(() => node.Node.GetSession(friend.PeerId)?.Identified is not null, Patience, "the valid push");
        var known = node.Node.GetSession(friend.PeerId)!.Identified!;
        Assert.Equal([elsewhere], known.ListenAddrs);
        Assert.Equal(["/honest/1.0.0"], known.Protocols);
        Assert.Null(node.Node.GetSession(friend.PeerId)!.CloseReason);
    }
}

using System.Net;
using System.Net.Sockets;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests;

/// <summary>
/// Issue 14, finding 10 (handshakes: failed ones were capped in concurrency per address but not in rate) and issue 15
/// (a penalty earned by one key locked a different trusted key out of the same address).
/// </summary>
public sealed class HandshakeBudgetTests
{
    [Fact]
    public async Task A_trusted_identity_is_judged_by_its_key_not_by_a_refusal_another_key_earned_from_its_address()
    {
        await using var server = TestNode.Start();
        using var bob = NodeIdentity.Generate();
        using var carol = NodeIdentity.Generate();
        server.Db.Trust.AddPeer(bob.PeerId, "bob", trusted: true);
        server.Db.Trust.AddPeer(carol.PeerId, "carol", trusted: true);
        server.Db.Trust.Block(bob.PeerId, "for a while");

        // Bob, blocked, redials from 127.0.0.1 a few times, as a node does; each is refused after the handshake.
        for (var i = 0; i < 4; i++)
        {
            await using var attempt = await Wait.DialAsync(bob, server);
            Assert.True(await Wait.ClosedByRemoteAsync(attempt, TimeSpan.FromSeconds(3)));
        }
        Assert.Equal(4, server.Db.Audit.List().Count(e => e.Event == "handshake.refused" && e.PeerId == bob.PeerId.Text));

        // Carol, trusted, from the same address at once: her key decides.
        await using var carolSession = await Wait.DialAsync(carol, server);
        await Wait.UntilAsync(() => server.Node.GetSession(carol.PeerId) is not null, TimeSpan.FromSeconds(5), "Carol's session");

        // Bob trusted again gets in straight away too.
        server.Db.Trust.Trust(bob.PeerId);
        await using var bobSession = await Wait.DialAsync(bob, server);
        await Wait.UntilAsync(() => server.Node.GetSession(bob.PeerId) is not null, TimeSpan.FromSeconds(5), "Bob's session");
    }

    [Fact]
    public async Task Failed_handshakes_from_one_address_are_held_to_its_budget_and_rate_and_other_addresses_are_not()
    {
        // Five handshakes without a session, then one per 30 s: the test does not depend on this machine's speed.
        await using var server = TestNode.Start(handshakeBurst: 5, handshakeRefill: TimeSpan.FromSeconds(30));
        var flooder = IPAddress.Parse("127.0.0.3");
        for (var i = 0; i < 40; i++)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(flooder, 0));
            await socket.ConnectAsync(server.EndPoint);
            // A Noise frame length and junk: key agreement work for the node if it starts the handshake.
            try
            {
                await socket.SendAsync(new byte[] { 0x00, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 });
            }
            catch (SocketException)
            {
                // Already closed by the node: refused before the handshake.
            }
        }
        await Wait.UntilAsync(() => server.Node.HandshakeCounts.Refused + server.Node.HandshakeCounts.Failed >= 40, TimeSpan.FromSeconds(20), "every flood connection to end");
        Assert.Equal(5, server.Node.HandshakeCounts.Failed);
        Assert.Equal(35, server.Node.HandshakeCounts.Refused);

        // A stranger from the flooding address gets no handshake now, and is not recorded.
        using var stranger = NodeIdentity.Generate();
        await Assert.ThrowsAsync<SecureMeshException>(() => MappedAddressBlockTests.DialFromAsync(flooder, stranger, server));
        Assert.Null(server.Db.Trust.GetPeer(stranger.PeerId));

        // Another address is not held up.
        using var friend = NodeIdentity.Generate();
        server.Db.Trust.AddPeer(friend.PeerId, trusted: true);
        await using var session = await MappedAddressBlockTests.DialFromAsync(IPAddress.Parse("127.0.0.4"), friend, server);
        await Wait.UntilAsync(() => server.Node.GetSession(friend.PeerId) is not null, TimeSpan.FromSeconds(5), "the session from another address");
    }

    [Fact]
    public async Task A_blocked_address_range_stays_blocked_for_a_trusted_key()
    {
        await using var server = TestNode.Start();
        using var friend = NodeIdentity.Generate();
        server.Db.Trust.AddPeer(friend.PeerId, trusted: true);
        server.Db.Trust.BlockAddress("127.0.0.6");
        await Assert.ThrowsAsync<SecureMeshException>(() => MappedAddressBlockTests.DialFromAsync(IPAddress.Parse("127.0.0.6"), friend, server));
        Assert.Empty(server.Node.Sessions);
        Assert.Equal(PeerState.Trusted, server.Db.Trust.GetPeer(friend.PeerId)!.State);
    }
}

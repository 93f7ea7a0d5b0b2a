using System.Net;
using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests;

public sealed class AuthorizationTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task An_unknown_peer_is_recorded_as_pending_audited_and_disconnected()
    {
        await using var server = TestNode.Start();
        using var stranger = NodeIdentity.Generate();

        await using var connection = await Wait.DialAsync(stranger, server);
        Assert.Equal(server.Identity.PeerId, connection.RemotePeerId);
        Assert.True(await Wait.ClosedByRemoteAsync(connection, TimeSpan.FromSeconds(3)), "the node kept an unknown peer connected");

        var record = server.Db.Trust.GetPeer(stranger.PeerId);
        Assert.NotNull(record);
        Assert.Equal(PeerState.Pending, record.State);
        Assert.Equal("127.0.0.1", Assert.Single(record.Addresses).Address);
        Assert.NotNull(record.LastSeen);
        Assert.Empty(server.Node.Sessions);
        var audit = server.Db.Audit.List();
        Assert.Contains(audit, e => e.Event == "handshake.pending" && e.PeerId == stranger.PeerId.Text && e.Detail.Contains("SAS", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_trusted_peer_gets_a_session_that_stays_open()
    {
        await using var server = TestNode.Start();
        using var friend = NodeIdentity.Generate();
        server.Db.Trust.AddPeer(friend.PeerId, "friend", trusted: true);

        await using var connection = await Wait.DialAsync(friend, server);
        await Wait.UntilAsync(() => server.Node.GetSession(friend.PeerId) is not null, 3 * Second, "the session");
        var session = server.Node.GetSession(friend.PeerId)!;
        Assert.Equal(ConnectionDirection.Inbound, session.Direction);
        Assert.Equal(Core.Channel.ShortAuthString.From(connection.HandshakeHash), session.ShortAuthString);
        await Task.Delay(500);
        Assert.Null(session.CloseReason);
        Assert.NotNull(server.Node.GetSession(friend.PeerId));
    }

    [Fact]
    public async Task A_block_made_by_another_process_cuts_an_open_session_at_the_next_poll()
    {
        // The node's clock is the test's: the cut is tied to the poll (every 250 ms), not to how fast the machine is.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = TestNode.Start(time: time);
        using var friend = NodeIdentity.Generate();
        server.Db.Trust.AddPeer(friend.PeerId, trusted: true);
        await using var connection = await Wait.DialAsync(friend, server);
        await Wait.UntilAsync(() => server.Node.GetSession(friend.PeerId) is not null, 3 * Second, "the session");

        using (var cli = server.OpenOtherHandle())
        {
            cli.Trust.Block(friend.PeerId, "test");
        }
        // The node's time moves a poll interval at a time (the cut also lingers briefly on that clock for the peer to
        // hang up): the change is seen at a poll and the session cut, however slow the machine is.
        var closed = Wait.ClosedByRemoteAsync(connection, TimeSpan.FromSeconds(10));
        while (!closed.IsCompleted)
        {
            time.Advance(new NodeOptions { Home = "." }.PollInterval);
            await Task.Delay(20);
        }
        Assert.True(await closed, "the block did not cut the session");
        await Wait.UntilAsync(() => server.Node.GetSession(friend.PeerId) is null, 5 * Second, "the session to go");
        Assert.Contains(server.Db.Audit.List(), e => e.Event == "session.cut" && e.PeerId == friend.PeerId.Text);
    }

    [Fact]
    public async Task A_blocked_peer_is_cut_after_the_handshake_and_its_next_attempts_are_refused_before_it()
    {
        // A handshake budget of one for this address, refilled only after 30 s.
        await using var server = TestNode.Start(handshakeBurst: 1, handshakeRefill: TimeSpan.FromSeconds(30));
        using var enemy = NodeIdentity.Generate();
        server.Db.Trust.Block(enemy.PeerId, "spam");

        await using (var first = await Wait.DialAsync(enemy, server))
        {
            Assert.True(await Wait.ClosedByRemoteAsync(first, TimeSpan.FromSeconds(3)));
        }
        Assert.Contains(server.Db.Audit.List(), e => e.Event == "handshake.refused" && e.PeerId == enemy.PeerId.Text);

        // Rate-limited: with the address's budget spent, the next attempt from it gets no handshake at all.
        var retry = await Assert.ThrowsAsync<SecureMeshException>(() => Wait.DialAsync(enemy, server));
        Assert.NotNull(retry.Message);
        Assert.Empty(server.Node.Sessions);
        Assert.Equal(PeerState.Blocked, server.Db.Trust.GetPeer(enemy.PeerId)!.State);
    }

    [Fact]
    public async Task A_blocked_address_gets_nothing_but_a_close()
    {
        await using var server = TestNode.Start();
        using var friend = NodeIdentity.Generate();
        server.Db.Trust.AddPeer(friend.PeerId, trusted: true);
        server.Db.Trust.BlockAddress("127.0.0.0/8", "test range");

        await Assert.ThrowsAsync<SecureMeshException>(() => Wait.DialAsync(friend, server));
        Assert.Empty(server.Node.Sessions);
        Assert.Contains(server.Db.Audit.List(), e => e.Event == "handshake.refused" && e.Detail.Contains("blocked range", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_pending_peer_trusted_later_gets_a_session_on_its_next_attempt()
    {
        await using var server = TestNode.Start();
        using var newcomer = NodeIdentity.Generate();
        await using (var first = await Wait.DialAsync(newcomer, server))
        {
            Assert.True(await Wait.ClosedByRemoteAsync(first, TimeSpan.FromSeconds(3)));
        }
        Assert.Equal(PeerState.Pending, server.Db.Trust.GetPeer(newcomer.PeerId)!.State);
        server.Db.Trust.Trust(newcomer.PeerId);
        await Task.Delay(300);

        await using var second = await Wait.DialAsync(newcomer, server);
        await Wait.UntilAsync(() => server.Node.GetSession(newcomer.PeerId) is not null, 3 * Second, "the session");
    }

    [Fact]
    public async Task Dialling_an_untrusted_peer_is_refused_locally()
    {
        await using var a = TestNode.Start();
        await using var b = TestNode.Start();
        var error = await Assert.ThrowsAsync<SecureMeshException>(() => a.Node.ConnectAsync(b.Identity.PeerId, b.EndPoint, CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.Unauthorized, error.Kind);
    }

    [Fact]
    public async Task Two_nodes_that_trust_each_other_connect_and_see_the_same_short_authentication_string()
    {
        await using var a = TestNode.Start();
        await using var b = TestNode.Start();
        a.Db.Trust.AddPeer(b.Identity.PeerId, "b", [b.EndPoint.ToString()], trusted: true);
        b.Db.Trust.AddPeer(a.Identity.PeerId, "a", trusted: true);

        var session = await a.Node.ConnectAsync(b.Identity.PeerId, b.EndPoint, CancellationToken.None);
        Assert.Equal(ConnectionDirection.Outbound, session.Direction);
        await Wait.UntilAsync(() => b.Node.GetSession(a.Identity.PeerId) is not null, 3 * Second, "b's session");
        Assert.Equal(session.ShortAuthString, b.Node.GetSession(a.Identity.PeerId)!.ShortAuthString);
    }

    [Fact]
    public async Task Dialling_with_the_wrong_expected_peer_id_fails()
    {
        await using var a = TestNode.Start();
        await using var b = TestNode.Start();
        using var impostor = NodeIdentity.Generate();
        a.Db.Trust.AddPeer(impostor.PeerId, trusted: true);
        var error = await Assert.ThrowsAsync<SecureMeshException>(() => a.Node.ConnectAsync(impostor.PeerId, b.EndPoint, CancellationToken.None));
        Assert.Contains(impostor.PeerId.Text, error.Message, StringComparison.Ordinal);
        Assert.Empty(a.Node.Sessions);
    }

    [Fact]
    public void The_handshake_budget_gives_a_burst_then_the_refill_rate_and_a_trusted_handshake_costs_nothing()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var limiter = new AttemptLimiter(time, handshakeBurst: 3, handshakeRefill: TimeSpan.FromSeconds(1));
        var address = IPAddress.Parse("192.0.2.7");
        for (var i = 0; i < 3; i++)
        {
            Assert.True(limiter.TryTakeHandshake(address, out _));
        }
        Assert.False(limiter.TryTakeHandshake(address, out var retry));
        Assert.Equal(TimeSpan.FromSeconds(1), retry);
        // The same address in its mapped spelling, and another host of the same IPv6 /64, share a budget.
        Assert.False(limiter.TryTakeHandshake(IPAddress.Parse("::ffff:192.0.2.7"), out _));
        Assert.True(limiter.TryTakeHandshake(IPAddress.Parse("192.0.2.8"), out _));
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(limiter.TryTakeHandshake(address, out _));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(limiter.TryTakeHandshake(address, out _));
        Assert.False(limiter.TryTakeHandshake(address, out _));
        // A handshake that proved a trusted key gives its token back.
        limiter.RefundHandshake(address);
        Assert.True(limiter.TryTakeHandshake(address, out _));
        // No lockout is kept: a quiet address has its whole burst again.
        time.Advance(TimeSpan.FromSeconds(10));
        for (var i = 0; i < 3; i++)
        {
            Assert.True(limiter.TryTakeHandshake(address, out _));
        }
        Assert.Equal(TimeSpan.Zero, limiter.HandshakeRetryAfter(IPAddress.Parse("2001:db8::1")));
        for (var i = 0; i < 3; i++)
        {
            Assert.True(limiter.TryTakeHandshake(IPAddress.Parse($"2001:db8::{i + 1}"), out _));
        }
        Assert.False(limiter.TryTakeHandshake(IPAddress.Parse("2001:db8::ffff:1"), out _));
        Assert.True(limiter.TryTakeHandshake(IPAddress.Parse("2001:db8:0:1::1"), out _));
    }
}

public sealed class StrangerBudgetTests
{
    [Fact]
    public void Strangers_get_a_burst_then_one_attempt_per_refill_period()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var limiter = new AttemptLimiter(time);
        var address = System.Net.IPAddress.Parse("198.51.100.1");
        for (var i = 0; i < 3; i++)
        {
            Assert.True(limiter.TryTakeStrangerAttempt(address, burst: 3, refill: TimeSpan.FromSeconds(5)));
        }
        Assert.False(limiter.TryTakeStrangerAttempt(address, burst: 3, refill: TimeSpan.FromSeconds(5)));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(limiter.TryTakeStrangerAttempt(address, burst: 3, refill: TimeSpan.FromSeconds(5)));
        Assert.False(limiter.TryTakeStrangerAttempt(address, burst: 3, refill: TimeSpan.FromSeconds(5)));
        Assert.True(limiter.TryTakeStrangerAttempt(System.Net.IPAddress.Parse("198.51.100.2"), burst: 3, refill: TimeSpan.FromSeconds(5)));
    }
}

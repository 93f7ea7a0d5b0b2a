using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Control;
using SecureMesh.Node.Network;
using SecureMesh.Node.Tests.Transfer;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests;

/// <summary>Log lines captured with their level and event id.</summary>
internal sealed class CapturedLogs : ILoggerFactory, ILoggerProvider, ILogger
{
    public ConcurrentQueue<(LogLevel Level, int Id, string Message)> Entries { get; } = new();

    public int Count(int id) => Entries.Count(e => e.Id == id);

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Entries.Enqueue((logLevel, eventId.Id, formatter(state, exception)));

    public void Dispose()
    {
    }
}

/// <summary>Issue 15: a blocked peer is told "refused" (and nothing more), records it, and backs off; a working session clears it.</summary>
public sealed class RefusalTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_blocked_peer_gets_one_empty_refusal_after_the_handshake_and_then_the_close()
    {
        await using var alice = TestNode.Start();
        using var bob = NodeIdentity.Generate();
        alice.Db.Trust.AddPeer(bob.PeerId, "bob", trusted: true);
        alice.Db.Trust.Block(bob.PeerId, "secret reason that must not leak");

        await using var connection = await PeerLink.DialAsync(bob, alice.EndPoint, alice.Identity.PeerId, Patience, Timeout());
        // The refusal comes on a stream of its own, the one stream the node opens.
        var (protocol, stream) = await connection.AcceptStreamAsync([MeshNode.RefusedProtocol, "/ipfs/id/1.0.0"], Timeout());
        Assert.Equal(MeshNode.RefusedProtocol, protocol);
        await using var messages = new MessageStream(stream);
        using var received = await messages.ReceiveAsync(Timeout());
        var message = received!.Memory.ToArray();
        Assert.Equal(WireCodec.Encode(new RefusedMessage()), message);
        Assert.Equal([0x0C, 0x00], message);
        Assert.IsType<RefusedMessage>(WireCodec.Decode(message));
        // Then the close: nothing else follows.
        Assert.Null(await messages.ReceiveAsync(Timeout()));
        Assert.True(await connection.ClosedByRemoteAsync(Patience), "the node kept the blocked peer connected");
    }

    [Fact]
    public async Task A_stranger_is_told_nothing_not_even_refused()
    {
        await using var alice = TestNode.Start();
        using var stranger = NodeIdentity.Generate();
        await using var connection = await PeerLink.DialAsync(stranger, alice.EndPoint, alice.Identity.PeerId, Patience, Timeout());
        Assert.True(await connection.ClosedByRemoteAsync(Patience), "the node kept the stranger connected");
        // Not a single stream was opened towards it.
        await Assert.ThrowsAsync<SecureMeshException>(async () => await connection.Muxer.AcceptStreamAsync(Timeout()));
    }

    [Fact]
    public async Task The_blocked_side_records_the_refusal_shows_it_and_a_working_session_clears_it()
    {
        await using var alice = TransferNode.Start();
        await using var bob = TransferNode.Start();
        bob.Trust(alice);
        alice.Trust(bob);
        alice.Db.Trust.Block(bob.PeerId, "do not tell");

        var closed = new TaskCompletionSource<PeerSession>(TaskCreationOptions.RunContinuationsAsynchronously);
        bob.Node.SessionClosed += s => closed.TrySetResult(s);
        await bob.Node.ConnectAsync(alice.PeerId, alice.Node.LocalEndPoint, CancellationToken.None);
        var session = await closed.Task.WaitAsync(Patience);
        Assert.True(session.RefusedByPeer);
        Assert.Equal("refused by the peer", session.CloseReason);

        var record = bob.Db.Trust.GetPeer(alice.PeerId)!;
        Assert.True(record.RefusingUs);
        Assert.Equal(1, record.Refusals);
        Assert.Equal(PeerState.Trusted, record.State);
        Assert.Contains(bob.Db.Audit.List(), e => e.Event == "peer.refused_us" && e.PeerId == alice.PeerId.Text);
        // Nothing of Alice's reason reaches Bob.
        Assert.DoesNotContain(bob.Db.Audit.List(), e => e.Detail.Contains("do not tell", StringComparison.Ordinal));

        // peers list and status say so; the state itself stays "trusted".
        var control = new NodeControlService(bob.Home, bob.Db, bob.Node);
        var listed = (await control.ListPeersAsync(null, CancellationToken.None)).Single(p => p.PeerId == alice.PeerId.Text);
        Assert.True(listed.RefusingUs);
        Assert.Equal("trusted", listed.State);
        var refusal = Assert.Single((await control.GetStatusAsync(CancellationToken.None)).RefusingUs!);
        Assert.Equal(alice.PeerId.Text, refusal.PeerId);
        Assert.Equal(refusal.LastRefusal + TimeSpan.FromSeconds(2), refusal.NextAttempt);

        // Alice changes her mind: the next session works and clears the refusal.
        alice.Db.Trust.Trust(bob.PeerId);
        await bob.Node.ConnectAsync(alice.PeerId, alice.Node.LocalEndPoint, CancellationToken.None);
        await Wait.UntilAsync(() => !bob.Db.Trust.GetPeer(alice.PeerId)!.RefusingUs, Patience, "the refusal to be cleared");
        Assert.Contains(bob.Db.Audit.List(), e => e.Event == "peer.accepts_us");
        Assert.False((await control.ListPeersAsync(null, CancellationToken.None)).Single(p => p.PeerId == alice.PeerId.Text).RefusingUs);
    }

    [Fact]
    public async Task A_session_cut_by_a_block_also_tells_the_peer()
    {
        await using var alice = TransferNode.Start();
        await using var bob = TransferNode.Start();
        await bob.ConnectAsync(alice);
        alice.Db.Trust.Block(bob.PeerId);
        alice.Node.ReevaluateSessions();
        await Wait.UntilAsync(() => bob.Db.Trust.GetPeer(alice.PeerId)!.RefusingUs, Patience, "Bob to learn he is refused");
    }

    [Fact]
    public void The_backoff_starts_at_two_seconds_doubles_and_stops_at_an_hour()
    {
        Assert.Equal(TimeSpan.Zero, PeerConnector.RefusalBackoff(0));
        Assert.Equal(TimeSpan.FromSeconds(2), PeerConnector.RefusalBackoff(1));
        Assert.Equal(TimeSpan.FromSeconds(4), PeerConnector.RefusalBackoff(2));
        Assert.Equal(TimeSpan.FromSeconds(1024), PeerConnector.RefusalBackoff(10));
        Assert.Equal(TimeSpan.FromHours(1), PeerConnector.RefusalBackoff(12));
        Assert.Equal(TimeSpan.FromHours(1), PeerConnector.RefusalBackoff(int.MaxValue));
    }

    [Fact]
    public async Task The_connector_backs_off_exponentially_on_the_injected_clock_instead_of_redialling_every_second()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var alice = TestNode.Start();
        await using var bob = TestNode.Start(time: time);
        alice.Db.Trust.AddPeer(bob.Identity.PeerId, "bob", trusted: true);
        alice.Db.Trust.Block(bob.Identity.PeerId);
        bob.Db.Trust.AddPeer(alice.Identity.PeerId, "alice", [$"127.0.0.1:{alice.EndPoint.Port}"], trusted: true);
        int Refusals() => bob.Db.Trust.GetPeer(alice.Identity.PeerId)!.Refusals;

        await using var connector = new PeerConnector(bob.Node, time);
        connector.Start();
        // The larger Peer ID waits half a second before its first dial. The clock moves on in small steps until that dial
        // is refused, so a loop that starts its timer after the first step is not left waiting for a tick that never comes.
        var firstDeadline = DateTime.UtcNow + Patience;
        while (Refusals() == 0)
        {
            Assert.True(DateTime.UtcNow < firstDeadline, "timed out waiting for the first refusal");
            time.Advance(TimeSpan.FromMilliseconds(500));
            await Task.Delay(200);
        }
        Assert.Equal(1, Refusals());

        // Refusal n is followed by 2^n seconds of quiet: the loop ticks every second, but the next dial (seen as the next
        // refusal, stamped with the fake clock) comes no sooner than the backoff, and soon after it.
        for (var n = 1; n <= 4; n++)
        {
            var refusedAt = bob.Db.Trust.GetPeer(alice.Identity.PeerId)!.RefusedAt!.Value;
            var backoff = PeerConnector.RefusalBackoff(n);
            while (Refusals() == n)
            {
                Assert.True(time.GetUtcNow() - refusedAt <= backoff + TimeSpan.FromSeconds(5), $"no dial {backoff + TimeSpan.FromSeconds(5)} after refusal {n}");
                time.Advance(TimeSpan.FromSeconds(1));
                await Task.Delay(100);
            }
            await Wait.UntilAsync(() => Refusals() == n + 1, Patience, $"refusal {n + 1}");
            var gap = bob.Db.Trust.GetPeer(alice.Identity.PeerId)!.RefusedAt!.Value - refusedAt;
            Assert.InRange(gap, backoff, backoff + TimeSpan.FromSeconds(5));
        }
        // Five dials in 2+4+8+16 = 30 s, where the old connector made about thirty.
        Assert.Equal(5, Refusals());
        Assert.Equal(5, alice.Db.Audit.List().Count(e => e.Event == "handshake.refused"));
    }

    [Fact]
    public async Task The_refusing_side_logs_repeated_refusals_of_one_address_once_per_interval()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var logs = new CapturedLogs();
        await using var alice = TestNode.Start(time: time, loggers: logs);
        await using var bob = TestNode.Start();
        alice.Db.Trust.AddPeer(bob.Identity.PeerId, trusted: true);
        alice.Db.Trust.Block(bob.Identity.PeerId);
        bob.Db.Trust.AddPeer(alice.Identity.PeerId, trusted: true);

        async Task DialAsync(int expectedRefusals)
        {
            await bob.Node.ConnectAsync(alice.Identity.PeerId, alice.EndPoint, CancellationToken.None);
            await Wait.UntilAsync(() => bob.Db.Trust.GetPeer(alice.Identity.PeerId)!.Refusals == expectedRefusals, Patience, "the refusal");
        }

        for (var i = 1; i <= 5; i++)
        {
            await DialAsync(i);
        }
        Assert.Equal(1, logs.Count(121) + logs.Count(126));
        Assert.Equal(0, logs.Count(123));
        // A wait of nothing is not announced as "next attempt allowed in 00:00:00".
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("00:00:00", StringComparison.Ordinal));

        // The next interval logs again, once, with the count of those not logged.
        time.Advance(MeshNode.RefusalLogInterval);
        await DialAsync(6);
        await DialAsync(7);
        Assert.Equal(2, logs.Count(121) + logs.Count(126));
        var summary = Assert.Single(logs.Entries, e => e.Id == 123);
        Assert.StartsWith("4 more refusals of 127.0.0.1", summary.Message, StringComparison.Ordinal);
        // Every refusal is still audited.
        Assert.Equal(7, alice.Db.Audit.List().Count(e => e.Event == "handshake.refused"));
    }

    [Fact]
    public async Task A_refused_session_is_counted_before_the_connector_may_dial_again()
    {
        // The connector redials a trusted peer that has no session, is not ending one, and has no refusal in its
        // backoff. Were the session gone and not marked ending before its refusal is counted, a tick in between would
        // redial at once and count two refusals for one backoff (RefusalTests' backoff test failed that way under load).
        await using var alice = TestNode.Start();
        await using var bob = TestNode.Start();
        alice.Db.Trust.AddPeer(bob.Identity.PeerId, trusted: true);
        alice.Db.Trust.Block(bob.Identity.PeerId);
        bob.Db.Trust.AddPeer(alice.Identity.PeerId, trusted: true);

        // The window is short (a database write): twenty refusals make it likely that the watcher lands in it.
        for (var i = 1; i <= 20; i++)
        {
            var session = await bob.Node.ConnectAsync(alice.Identity.PeerId, alice.EndPoint, CancellationToken.None);
            // Watch from another thread, as the connector's loop does: once the session is neither in the table nor
            // ending, the refusal is counted.
            var watch = Task.Run(() =>
            {
                var deadline = DateTime.UtcNow + Patience;
                while (ReferenceEquals(bob.Node.GetSession(alice.Identity.PeerId), session) || bob.Node.IsEnding(alice.Identity.PeerId))
                {
                    Assert.True(DateTime.UtcNow < deadline, "the refused session never ended");
                    Thread.SpinWait(20);
                }
                return bob.Db.Trust.GetPeer(alice.Identity.PeerId)!.Refusals;
            });
            Assert.Equal(i, await watch);
            // And a dial after the count is a new connection, not the session that was ending.
            Assert.Null(bob.Node.GetSession(alice.Identity.PeerId));
        }
    }

    private static CancellationToken Timeout() => new CancellationTokenSource(Patience).Token;
}

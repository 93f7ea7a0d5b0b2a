using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Network;
using static SecureMesh.Node.Tests.Connections.TransportKit;

namespace SecureMesh.Node.Tests.Connections;

/// <summary>
/// What the transport and the node log about connections: failures and refusals with a reason (bounded under a flood),
/// a peer's clean close as ordinary life, a broken connection with why. Never secrets.
/// (Ported from the pre-libp2p channel's ListenerLoggingTests and CloseLoggingTests.)
/// </summary>
public sealed class TransportLoggingTests
{
    private const int HandshakeFailedId = 3002;
    private const int ConnectionRefusedId = 146;
    private const int SuppressedId = 3007;
    private const int SessionClosedId = 111;

    private volatile bool _allow = true;

    [Fact]
    public async Task Failures_and_refusals_are_logged_with_a_reason()
    {
        using var server = NodeIdentity.Generate();
        var logs = new CapturedLogs();
        await using var transport = Listen(server, logger: logs, addressFilter: _ => _allow);

        using (var raw = await ConnectAtNoiseAsync(transport.LocalEndPoint))
        {
            await raw.SendAsync(new byte[] { 0, 3, 1, 2, 3 });
            Assert.True(await WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
        }
        using (var raw = await ConnectRawAsync(transport.LocalEndPoint))
        {
            // 'G' reads as a 71-byte multistream message, and its 71st byte is not a newline.
            await raw.SendAsync(System.Text.Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n" + new string('A', 100)));
            Assert.True(await WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
        }
        await WaitUntilAsync(() => transport.FailedHandshakes == 2, "the failures");

        _allow = false;
        using (var refused = await ConnectRawAsync(transport.LocalEndPoint))
        {
            Assert.True(await WaitForCloseAsync(refused, TimeSpan.FromSeconds(3)));
        }
        await WaitUntilAsync(() => transport.RefusedConnections == 1, "the refusal");

        Assert.Contains(logs.Entries, e => e.Id == HandshakeFailedId && e.Level == LogLevel.Warning && e.Message.Contains("handshake message 1 is malformed", StringComparison.Ordinal));
        Assert.Contains(logs.Entries, e => e.Id == HandshakeFailedId && e.Message.Contains("security negotiation failed", StringComparison.Ordinal));
        Assert.Contains(logs.Entries, e => e.Id == ConnectionRefusedId && e.Level == LogLevel.Warning && e.Message.Contains("address filtered", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_flood_of_garbage_connections_writes_a_bounded_number_of_lines_and_then_a_count()
    {
        using var server = NodeIdentity.Generate();
        var logs = new CapturedLogs();
        var time = new FakeTimeProvider();
        // The clock only drives the log window here: the upgrade deadline is far away.
        await using var transport = Listen(server, TimeSpan.FromMinutes(10), time: time, logger: logs, failureLog: new LogThrottle(time, burst: 5, TimeSpan.FromSeconds(10)));

        async Task FloodAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                using var raw = await ConnectAtNoiseAsync(transport.LocalEndPoint);
                await raw.SendAsync(new byte[] { 0, 3, 1, 2, 3 });
                Assert.True(await WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
            }
        }

        await FloodAsync(40);
        await WaitUntilAsync(() => transport.FailedHandshakes == 40, "the failures");
        Assert.Equal(5, logs.Count(HandshakeFailedId));
        Assert.Equal(0, logs.Count(SuppressedId));

        // The next window reports what the last one dropped, once, and logs again.
        time.Advance(TimeSpan.FromSeconds(11));
        await FloodAsync(1);
        await WaitUntilAsync(() => transport.FailedHandshakes == 41, "the next failure");
        Assert.Equal(6, logs.Count(HandshakeFailedId));
        var summary = Assert.Single(logs.Entries, e => e.Id == SuppressedId);
        Assert.StartsWith("35 more failed or refused connections", summary.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_clean_close_by_the_peer_is_logged_at_information_not_as_a_warning()
    {
        var (logs, closed, client) = await SessionClosedLineAsync(_ => Task.CompletedTask);
        Assert.Equal(LogLevel.Information, closed.Level);
        Assert.Contains(client.Text, closed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("broke", closed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task A_connection_cut_inside_a_frame_is_logged_as_broken()
    {
        // A frame header promising 256 bytes, two of them, then the close: the frame is cut part-way.
        var (_, closed, client) = await SessionClosedLineAsync(link => link.Connection.Stream.SendRawForTestAsync(new byte[] { 0x01, 0x00, 1, 2 }, seal: false, Timeout()));

        // Unlike a clean close, the line says the connection broke.
        Assert.Contains(client.Text, closed.Message, StringComparison.Ordinal);
        Assert.Contains("the connection broke while receiving", closed.Message, StringComparison.Ordinal);
    }

    /// <summary>A trusted client's session with a node: <paramref name="beforeClose"/> runs on its link, then the client hangs up; the node's "session closed" line.</summary>
    private static async Task<((LogLevel Level, int Id, string Message)[] Logs, (LogLevel Level, int Id, string Message) Closed, PeerId Client)> SessionClosedLineAsync(Func<PeerLink, Task> beforeClose)
    {
        var logs = new CapturedLogs();
        await using var server = TestNode.Start(loggers: logs);
        using var client = NodeIdentity.Generate();
        server.Db.Trust.AddPeer(client.PeerId, "client", trusted: true);
        await using (var link = await Wait.DialAsync(client, server))
        {
            await Wait.UntilAsync(() => server.Node.GetSession(client.PeerId) is not null, Patience, "the session");
            await beforeClose(link);
        }
        await Wait.UntilAsync(() => logs.Count(SessionClosedId) == 1, Patience, "the session to be logged as closed");
        // Taken before the node stops.
        var lines = logs.Entries.ToArray();
        return (lines, Assert.Single(lines, e => e.Id == SessionClosedId), client.PeerId);
    }
}

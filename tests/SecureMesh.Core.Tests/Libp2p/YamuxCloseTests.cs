using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Tests.Shared;
using static SecureMesh.Core.Tests.Libp2p.YamuxKit;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// The normal end of a session: go-away, then our end of the connection (a FIN), so that both sides end on a clean end
/// of stream. Nothing is thrown on the way (an exception on each layer of every closed connection cost the handshake
/// benchmark ~20 first-chance exceptions per connection), and a peer that never ends its side cannot hold the close.
/// </summary>
public sealed class YamuxCloseTests
{
    [Fact]
    public async Task A_clean_close_ends_both_sessions_and_their_loops_without_a_single_exception()
    {
        using var exceptions = new FirstChanceCounter();
        // Keep-alive on (its first ping goes out at once), as on every real connection.
        var (client, server) = await SessionPairAsync(new YamuxOptions(), new YamuxOptions());
        await using var owned = server;
        exceptions.Start();

        var stream = await client.OpenStreamAsync();
        await stream.WriteAsync(new byte[] { 1, 2, 3 });
        await stream.CloseWriteAsync();
        var inbound = await server.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        Assert.Equal(new byte[] { 1, 2, 3 }, await ReadAllAsync(inbound).WaitAsync(Patience));
        await inbound.CloseWriteAsync();
        Assert.Equal(0, await stream.ReadAsync(new byte[1]).AsTask().WaitAsync(Patience));
        stream.Dispose();
        inbound.Dispose();
        await EventuallyAsync(() => client.RoundTripTime is not null && server.RoundTripTime is not null, "the first keep-alive pings");
        var accepting = server.AcceptStreamOrEndAsync().AsTask();

        await client.CloseAsync().AsTask().WaitAsync(Patience);
        await server.Completion.WaitAsync(Patience);
        Assert.Null(await accepting.WaitAsync(Patience));
        exceptions.Stop();

        Assert.Contains("went away", server.ClosedReason, StringComparison.Ordinal);
        Assert.Empty(exceptions.Seen);
    }

    [Fact]
    public async Task A_quiet_stream_written_after_the_session_ended_returns_and_then_reads_the_end_while_a_plain_one_throws()
    {
        // The node's identify of a peer that closed the connection at once: its request may be written just after the
        // session ended (CleanCloseTests saw one such write throw through eight async frames under load).
        var (client, server) = await SessionPairAsync(Quiet(), Quiet());
        await using var owned = server;
        await using var ownedClient = client;
        var quiet = await client.OpenStreamAsync();
        quiet.EndsQuietly = true;
        var plain = await client.OpenStreamAsync();
        await server.CloseAsync().AsTask().WaitAsync(Patience);
        await client.Completion.WaitAsync(Patience);

        using var exceptions = new FirstChanceCounter();
        exceptions.Start();
        await quiet.WriteAsync(new byte[] { 1, 2, 3 }).AsTask().WaitAsync(Patience);
        Assert.Equal(0, await quiet.ReadAsync(new byte[1]).AsTask().WaitAsync(Patience));
        exceptions.Stop();
        Assert.Empty(exceptions.Seen);
        await Assert.ThrowsAsync<SecureMeshException>(async () => await plain.WriteAsync(new byte[] { 1 }));

        // A reset stream still throws, quiet or not.
        var (c2, s2) = await SessionPairAsync(Quiet(), Quiet());
        await using var owned2 = s2;
        await using var owned3 = c2;
        var reset = await c2.OpenStreamAsync();
        reset.EndsQuietly = true;
        reset.Reset();
        await Assert.ThrowsAsync<SecureMeshException>(async () => await reset.WriteAsync(new byte[] { 1 }));
    }

    [Fact]
    public async Task A_session_closed_by_the_peer_ends_the_accept_loop_with_null_and_AcceptStreamAsync_still_throws()
    {
        var (client, server) = await SessionPairAsync(Quiet(), Quiet());
        await using var owned = server;
        await client.CloseAsync().AsTask().WaitAsync(Patience);
        await server.Completion.WaitAsync(Patience);
        Assert.Null(await server.AcceptStreamOrEndAsync().AsTask().WaitAsync(Patience));
        await Assert.ThrowsAsync<SecureMeshException>(async () => await server.AcceptStreamAsync());
    }

    [Fact]
    public async Task A_peer_that_never_ends_its_side_gets_the_go_away_and_our_end_and_holds_the_close_only_for_the_close_timeout()
    {
        var options = new YamuxOptions { KeepAliveInterval = Timeout.InfiniteTimeSpan, CloseTimeout = TimeSpan.FromMilliseconds(300) };
        var (session, peer) = await AgainstRawClientAsync(options);
        await using var owned = peer;

        var closing = session.CloseAsync().AsTask();
        // The peer reads the go-away and then the end of the connection, though it keeps its own side open.
        Assert.Equal(YamuxGoAwayCode.Normal, await peer.ExpectGoAwayAndCloseAsync());
        await closing.WaitAsync(Patience);
        Assert.True(session.Completion.IsCompleted);
    }

    [Fact]
    public async Task A_protocol_error_still_ends_the_session_at_once_with_the_error()
    {
        var options = new YamuxOptions { KeepAliveInterval = Timeout.InfiniteTimeSpan, CloseTimeout = TimeSpan.FromSeconds(30) };
        var (session, peer) = await AgainstRawClientAsync(options);
        await using var owned = peer;
        await using var ownedSession = session;

        // A SYN with an ID of the server's parity.
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 2, 0);
        Assert.Equal(YamuxGoAwayCode.ProtocolError, await peer.ExpectGoAwayAndCloseAsync());
        await session.Completion.WaitAsync(Patience);
        Assert.Contains("parity", session.ClosedReason, StringComparison.Ordinal);
        Assert.Null(await session.AcceptStreamOrEndAsync().AsTask().WaitAsync(Patience));
    }
}

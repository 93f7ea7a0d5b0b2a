using System.Security.Cryptography;
using SecureMesh.Core.Libp2p.Yamux;
using static SecureMesh.Core.Tests.Libp2p.YamuxKit;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>Two of our sessions over real loopback TCP: streams both ways, half-close, reset, ping, go-away, windows.</summary>
public class YamuxSessionTests
{
    [Fact]
    public async Task Streams_open_both_ways_with_odd_and_even_ids_and_carry_data()
    {
        var (client, server) = await SessionPairAsync();
        await using var owned1 = client;
        await using var owned2 = server;

        var c1 = await client.OpenStreamAsync();
        var c2 = await client.OpenStreamAsync();
        var s1 = await server.OpenStreamAsync();
        Assert.Equal(1u, c1.Id);
        Assert.Equal(3u, c2.Id);
        Assert.Equal(2u, s1.Id);

        await c1.WriteAsync("hello"u8.ToArray());
        var accepted = await server.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        Assert.Equal(1u, accepted.Id);
        Assert.False(accepted.IsOutbound);
        var buffer = new byte[5];
        await ReadExactlyAsync(accepted, buffer);
        Assert.Equal("hello"u8.ToArray(), buffer);

        await s1.WriteAsync("world"u8.ToArray());
        var fromServer = await client.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        Assert.Equal(2u, fromServer.Id);
        await ReadExactlyAsync(fromServer, buffer);
        Assert.Equal("world"u8.ToArray(), buffer);
    }

    [Fact]
    public async Task Half_close_delivers_end_of_stream_while_the_other_direction_stays_open()
    {
        var (client, server) = await SessionPairAsync();
        await using var owned1 = client;
        await using var owned2 = server;

        var request = RandomBytes(100_000, 1);
        var stream = await client.OpenStreamAsync();
        await stream.WriteAsync(request);
        await stream.CloseWriteAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await stream.WriteAsync(new byte[1]));

        var inbound = await server.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        Assert.Equal(request, await ReadAllAsync(inbound).WaitAsync(Patience)); // ends: FIN seen
        Assert.Equal(0, await inbound.ReadAsync(new byte[10]));                  // and stays ended

        // The server can still answer on its half.
        // More than a window: the client must read meanwhile.
        var answer = RandomBytes(300_000, 2);
        var reading = ReadAllAsync(stream);
        await inbound.WriteAsync(answer).AsTask().WaitAsync(Patience);
        await inbound.CloseWriteAsync();
        Assert.Equal(answer, await reading.WaitAsync(Patience));

        // Both halves closed and everything read: the streams are forgotten on both sides.
        stream.Dispose();
        inbound.Dispose();
        await EventuallyAsync(() => client.StreamCount == 0 && server.StreamCount == 0, "both sessions to retire the stream");
    }

    [Fact]
    public async Task Reset_aborts_the_stream_on_both_sides()
    {
        var (client, server) = await SessionPairAsync();
        await using var owned1 = client;
        await using var owned2 = server;

        var stream = await client.OpenStreamAsync();
        await stream.WriteAsync(new byte[10]);
        var inbound = await server.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await ReadExactlyAsync(inbound, new byte[10]);
        var pendingRead = inbound.ReadAsync(new byte[10]).AsTask();

        stream.Reset();
        Assert.True(stream.IsReset);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => pendingRead.WaitAsync(Patience));
        Assert.Contains("reset by the peer", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SecureMeshException>(async () => await inbound.WriteAsync(new byte[1]));
        await Assert.ThrowsAsync<SecureMeshException>(async () => _ = await stream.ReadAsync(new byte[1]));
        await EventuallyAsync(() => client.StreamCount == 0 && server.StreamCount == 0, "the reset stream to be retired");
    }

    [Fact]
    public async Task Disposing_a_stream_with_unread_data_resets_it()
    {
        var (client, server) = await SessionPairAsync();
        await using var owned1 = client;
        await using var owned2 = server;

        var stream = await client.OpenStreamAsync();
        await stream.WriteAsync(new byte[1000]);
        var inbound = await server.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await EventuallyAsync(() => inbound.BufferedBytes == 1000, "the data to arrive");
        inbound.Dispose();
        var e = await Assert.ThrowsAsync<SecureMeshException>(async () => await stream.ReadAsync(new byte[1]).AsTask().WaitAsync(Patience));
        Assert.Contains("reset", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ping_measures_the_round_trip()
    {
        var (client, server) = await SessionPairAsync(Quiet(), Quiet());
        await using var owned1 = client;
        await using var owned2 = server;

        Assert.Null(client.RoundTripTime);
        var rtt = await client.PingAsync().WaitAsync(Patience);
        Assert.True(rtt > TimeSpan.Zero && rtt < Patience);
        Assert.Equal(rtt, client.RoundTripTime);
        Assert.True(await server.PingAsync().WaitAsync(Patience) > TimeSpan.Zero);
    }

    [Fact]
    public async Task Keep_alive_pings_measure_the_round_trip_without_being_asked()
    {
        var (client, server) = await SessionPairAsync();
        await using var owned1 = client;
        await using var owned2 = server;
        await EventuallyAsync(() => client.RoundTripTime is not null && server.RoundTripTime is not null, "the first keep-alive pings");
    }

    [Fact]
    public async Task Closing_sends_go_away_and_ends_both_sessions_and_their_streams()
    {
        var (client, server) = await SessionPairAsync();
        await using var owned2 = server;

        var stream = await client.OpenStreamAsync();
        await stream.WriteAsync(new byte[1]);
        var inbound = await server.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await ReadExactlyAsync(inbound, new byte[1]);

        await client.CloseAsync().AsTask().WaitAsync(Patience);
        Assert.NotNull(client.ClosedReason);
        await server.Completion.WaitAsync(Patience);
        Assert.Contains("went away", server.ClosedReason, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SecureMeshException>(async () => await server.OpenStreamAsync());
        await Assert.ThrowsAsync<SecureMeshException>(async () => await client.OpenStreamAsync());
        await Assert.ThrowsAsync<SecureMeshException>(async () => await server.AcceptStreamAsync());
        await Assert.ThrowsAsync<SecureMeshException>(async () => await inbound.ReadAsync(new byte[1]).AsTask().WaitAsync(Patience));
    }

    [Fact]
    public async Task A_hundred_concurrent_streams_each_way_echo_their_data()
    {
        var (client, server) = await SessionPairAsync();
        await using var owned1 = client;
        await using var owned2 = server;

        async Task EchoAll(YamuxSession session, int count)
        {
            var echoes = new List<Task>();
            for (var i = 0; i < count; i++)
            {
                var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
                echoes.Add(Task.Run(async () =>
                {
                    await stream.CopyToAsync(stream);
                    await stream.CloseWriteAsync();
                }));
            }
            await Task.WhenAll(echoes);
        }

        async Task<bool> RoundTrip(YamuxSession session, int seed)
        {
            var stream = await session.OpenStreamAsync();
            var data = RandomBytes(20_000 + (seed * 997 % 50_000), seed);
            var reading = ReadAllAsync(stream);
            await stream.WriteAsync(data);
            await stream.CloseWriteAsync();
            var echoed = await reading.WaitAsync(Patience);
            stream.Dispose();
            return echoed.AsSpan().SequenceEqual(data);
        }

        var serverEcho = EchoAll(server, 100);
        var clientEcho = EchoAll(client, 100);
        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() => RoundTrip(i % 2 == 0 ? client : server, i))));
        Assert.All(results, Assert.True);
        await Task.WhenAll(serverEcho, clientEcho).WaitAsync(Patience);
        await EventuallyAsync(() => client.StreamCount == 0 && server.StreamCount == 0, "all 200 streams to be retired");
    }

    [Fact]
    public async Task Large_transfer_crosses_many_windows_intact()
    {
        var (client, server) = await SessionPairAsync();
        await using var owned1 = client;
        await using var owned2 = server;

        var data = RandomBytes(12 * 1024 * 1024, 3);
        var stream = await client.OpenStreamAsync();
        var writing = Task.Run(async () =>
        {
            await stream.WriteAsync(data);
            await stream.CloseWriteAsync();
        });
        var inbound = await server.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        var received = await ReadAllAsync(inbound).WaitAsync(Patience);
        await writing.WaitAsync(Patience);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(received));
    }

    [Fact]
    public async Task A_reader_that_stops_reading_blocks_the_writer_at_the_window_and_buffers_no_more()
    {
        var (client, server) = await SessionPairAsync(Quiet(), Quiet());
        await using var owned1 = client;
        await using var owned2 = server;

        var stream = await client.OpenStreamAsync();
        var data = RandomBytes(4 * 1024 * 1024, 4);
        var writing = stream.WriteAsync(data).AsTask();
        var inbound = await server.AcceptStreamAsync().AsTask().WaitAsync(Patience);

        await EventuallyAsync(() => inbound.BufferedBytes == (int)YamuxOptions.InitialWindow, "the window to fill");
        await Task.Delay(300);
        Assert.False(writing.IsCompleted);
        Assert.Equal(0, stream.SendWindow);
        Assert.Equal((int)YamuxOptions.InitialWindow, inbound.BufferedBytes); // not a byte beyond the window

        // Reading releases the writer.
        var received = await ReadAllAsyncUntil(inbound, data.Length);
        await writing.WaitAsync(Patience);
        Assert.Equal(data, received);
    }

    [Fact]
    public async Task Streams_beyond_the_peers_cap_are_reset_and_our_own_cap_refuses_to_open()
    {
        var (client, server) = await SessionPairAsync(Quiet(maxStreams: 10), Quiet(maxStreams: 3, connectionWindow: 3L * YamuxOptions.InitialWindow));
        await using var owned1 = client;
        await using var owned2 = server;

        var streams = new List<YamuxStream>();
        for (var i = 0; i < 5; i++)
        {
            var s = await client.OpenStreamAsync();
            await s.WriteAsync(new byte[] { (byte)i });
            streams.Add(s);
        }
        for (var i = 0; i < 3; i++)
        {
            var inbound = await server.AcceptStreamAsync().AsTask().WaitAsync(Patience);
            var one = new byte[1];
            await ReadExactlyAsync(inbound, one);
            Assert.Equal(i, one[0]);
        }
        foreach (var refused in streams.Skip(3))
        {
            var e = await Assert.ThrowsAsync<SecureMeshException>(async () => await refused.ReadAsync(new byte[1]).AsTask().WaitAsync(Patience));
            Assert.Contains("reset by the peer", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal(3, server.StreamCount);
        await EventuallyAsync(() => client.StreamCount == 3, "the refused streams to be retired");

        // The server's own cap: three are open, a fourth cannot be opened.
        var ex = await Assert.ThrowsAsync<SecureMeshException>(async () => await server.OpenStreamAsync());
        Assert.Contains("3 streams are open", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_session_survives_a_cancelled_read_and_a_cancelled_window_wait()
    {
        var (client, server) = await SessionPairAsync(Quiet(), Quiet());
        await using var owned1 = client;
        await using var owned2 = server;

        var stream = await client.OpenStreamAsync();
        using (var cts = new CancellationTokenSource(100))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => _ = await stream.ReadAsync(new byte[1], cts.Token));
        }
        await stream.WriteAsync(new byte[YamuxOptions.InitialWindow]); // fills the window exactly
        using (var cts = new CancellationTokenSource(100))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await stream.WriteAsync(new byte[1], cts.Token));
        }
        var inbound = await server.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await ReadExactlyAsync(inbound, new byte[YamuxOptions.InitialWindow]);
        await stream.WriteAsync(new byte[] { 42 }).AsTask().WaitAsync(Patience);
        var one = new byte[1];
        await ReadExactlyAsync(inbound, one);
        Assert.Equal(42, one[0]);
    }

    private static async Task<byte[]> ReadAllAsyncUntil(Stream stream, int length)
    {
        var buffer = new byte[length];
        await ReadExactlyAsync(stream, buffer);
        return buffer;
    }
}

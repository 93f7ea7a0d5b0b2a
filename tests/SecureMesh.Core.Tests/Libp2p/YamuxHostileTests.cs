using SecureMesh.Core.Libp2p.Yamux;
using static SecureMesh.Core.Tests.Libp2p.YamuxKit;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// A raw frame writer breaks the rules against our session (the server, even IDs; the raw peer is the client, odd IDs).
/// Every violation must bring a go-away with the protocol-error code, the end of the session with a
/// <see cref="SecureMeshException"/>, and the connection closed; never a hang, never unbounded buffering.
/// </summary>
public class YamuxHostileTests
{
    private static async Task AssertProtocolErrorAsync(YamuxSession session, RawPeer peer, string reason)
    {
        Assert.Equal(YamuxGoAwayCode.ProtocolError, await peer.ExpectGoAwayAndCloseAsync());
        await session.Completion.WaitAsync(Patience);
        Assert.Contains(reason, session.ClosedReason, StringComparison.Ordinal);
        var e = await Assert.ThrowsAsync<SecureMeshException>(async () => await session.AcceptStreamAsync());
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        await Assert.ThrowsAsync<SecureMeshException>(async () => await session.OpenStreamAsync());
    }

    [Fact]
    public async Task Unknown_frame_type_is_a_protocol_error()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendRawAsync(RawPeer.Frame((YamuxFrameType)4, YamuxFlags.None, 1, 0));
        await AssertProtocolErrorAsync(session, peer, "unknown frame type 4");
    }

    [Fact]
    public async Task Bad_version_is_a_protocol_error()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendRawAsync(RawPeer.Frame(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0, version: 1));
        await AssertProtocolErrorAsync(session, peer, "unsupported version 1");
    }

    [Fact]
    public async Task Ping_is_answered_with_the_same_value()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        await peer.SendAsync(YamuxFrameType.Ping, YamuxFlags.Syn, 0, 0xDEADBEEF);
        var (pong, _) = await peer.ExpectAsync(h => h.Type == YamuxFrameType.Ping, "the pong");
        Assert.Equal(YamuxFlags.Ack, pong.Flags);
        Assert.Equal(0xDEADBEEFu, pong.Length);
        Assert.Equal(0u, pong.StreamId);
    }

    [Fact]
    public async Task An_unsolicited_pong_is_ignored()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        await peer.SendAsync(YamuxFrameType.Ping, YamuxFlags.Ack, 0, 77);
        await peer.SendAsync(YamuxFrameType.Ping, YamuxFlags.Syn, 0, 78);
        var (pong, _) = await peer.ExpectAsync(h => h.Type == YamuxFrameType.Ping, "the pong");
        Assert.Equal(78u, pong.Length);
        Assert.Null(session.ClosedReason);
    }

    [Theory]
    [InlineData(YamuxFrameType.Ping, YamuxFlags.None, 0u, "neither or both")]
    [InlineData(YamuxFrameType.Ping, YamuxFlags.Syn, 5u, "Ping frame on stream 5")]
    [InlineData(YamuxFrameType.GoAway, YamuxFlags.None, 3u, "GoAway frame on stream 3")]
    [InlineData(YamuxFrameType.Data, YamuxFlags.Syn, 0u, "Data frame on the session ID 0")]
    [InlineData(YamuxFrameType.WindowUpdate, YamuxFlags.Syn | YamuxFlags.Ack, 1u, "SYN and ACK together")]
    [InlineData(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 2u, "an ID of our parity")]
    [InlineData(YamuxFrameType.Data, YamuxFlags.None, 9u, "never opened")]
    [InlineData(YamuxFrameType.WindowUpdate, YamuxFlags.None, 4u, "never opened")]
    public async Task Malformed_control_frames_are_protocol_errors(YamuxFrameType type, YamuxFlags flags, uint streamId, string reason)
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendAsync(type, flags, streamId, 0);
        await AssertProtocolErrorAsync(session, peer, reason);
    }

    [Fact]
    public async Task A_window_update_overflowing_2_pow_32_is_a_protocol_error()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.None, 1, uint.MaxValue - YamuxOptions.InitialWindow); // exactly 2^32-1: allowed
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.None, 1, 1);                                        // one more: overflow
        await AssertProtocolErrorAsync(session, peer, "overflows the window past 2^32-1");
    }

    [Fact]
    public async Task Data_beyond_the_window_is_a_protocol_error_and_nothing_beyond_it_is_buffered()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendDataAsync(1, new byte[YamuxOptions.InitialWindow], YamuxFlags.Syn);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await EventuallyAsync(() => stream.BufferedBytes == (int)YamuxOptions.InitialWindow, "the window's worth of data");
        await peer.SendDataAsync(1, new byte[1]);
        await AssertProtocolErrorAsync(session, peer, "beyond its window");
    }

    [Fact]
    public async Task A_huge_data_length_is_refused_before_any_payload_is_read()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendAsync(YamuxFrameType.Data, YamuxFlags.Syn, 1, uint.MaxValue); // no payload follows
        await AssertProtocolErrorAsync(session, peer, "beyond its window");
    }

    [Fact]
    public async Task Syn_for_an_open_stream_is_a_protocol_error()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        await AssertProtocolErrorAsync(session, peer, "which is open");
    }

    [Fact]
    public async Task A_stream_id_reused_after_its_stream_ended_is_a_protocol_error()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Rst, 1, 0);
        await EventuallyAsync(() => session.StreamCount == 0, "the reset stream to be retired");
        Assert.True(stream.IsReset);
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        await AssertProtocolErrorAsync(session, peer, "reuses stream ID 1");
    }

    [Fact]
    public async Task Streams_opened_slightly_out_of_order_are_accepted_but_not_twice()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 5, 0);
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 3, 0);
        var ids = new List<uint>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await session.AcceptStreamAsync().AsTask().WaitAsync(Patience)).Id);
        }
        Assert.Equal([5u, 1u, 3u], ids);
        foreach (var id in ids)
        {
            await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Rst, id, 0);
        }
        await EventuallyAsync(() => session.StreamCount == 0, "the streams to be retired");
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 3, 0);
        await AssertProtocolErrorAsync(session, peer, "reuses stream ID 3");
    }

    [Fact]
    public async Task Late_frames_for_a_stream_that_ended_are_dropped_not_fatal()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        stream.Reset();
        await peer.ExpectAsync(h => h.StreamId == 1 && (h.Flags & YamuxFlags.Rst) != 0, "our RST");
        // The peer had these in flight before it saw the RST.
        await peer.SendDataAsync(1, new byte[1000]);
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.None, 1, 4096);
        await peer.SendAsync(YamuxFrameType.Ping, YamuxFlags.Syn, 0, 5);
        var (pong, _) = await peer.ExpectAsync(h => h.Type == YamuxFrameType.Ping, "the pong");
        Assert.Equal(5u, pong.Length);
        Assert.Null(session.ClosedReason);
    }

    [Fact]
    public async Task Inbound_streams_beyond_the_cap_are_reset_at_once()
    {
        var (session, peer) = await AgainstRawClientAsync(Quiet(maxStreams: 4, connectionWindow: 4L * YamuxOptions.InitialWindow));
        await using var owned1 = session;
        await using var owned2 = peer;
        for (uint id = 1; id <= 11; id += 2)
        {
            await peer.SendDataAsync(id, "x"u8, YamuxFlags.Syn);
        }
        var (rst1, _) = await peer.ExpectAsync(h => (h.Flags & YamuxFlags.Rst) != 0, "a refusal");
        var (rst2, _) = await peer.ExpectAsync(h => (h.Flags & YamuxFlags.Rst) != 0, "a second refusal");
        Assert.Equal([9u, 11u], new[] { rst1.StreamId, rst2.StreamId });
        Assert.Equal(4, session.StreamCount);
        Assert.Null(session.ClosedReason);
    }

    [Fact]
    public async Task Accepting_a_stream_acknowledges_it()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        var (ack, _) = await peer.ExpectAsync(h => h.StreamId == 1, "the ACK");
        Assert.Equal(YamuxFlags.Ack, ack.Flags);
        Assert.Equal(YamuxFrameType.WindowUpdate, ack.Type);
    }

    [Fact]
    public async Task Our_streams_open_with_syn_and_even_ids_and_a_fin_closes_them()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        var stream = await session.OpenStreamAsync();
        await stream.WriteAsync("abc"u8.ToArray());
        await stream.CloseWriteAsync();
        var (syn, _) = await peer.ExpectAsync(h => h.StreamId == 2, "the SYN");
        Assert.Equal(YamuxFlags.Syn, syn.Flags);
        var (data, payload) = await peer.ExpectAsync(h => h.StreamId == 2, "the data");
        Assert.Equal(YamuxFrameType.Data, data.Type);
        Assert.Equal("abc"u8.ToArray(), payload);
        var (fin, _) = await peer.ExpectAsync(h => h.StreamId == 2, "the FIN");
        Assert.Equal(YamuxFlags.Fin, fin.Flags);

        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Ack, 2, 0);
        await peer.SendDataAsync(2, "reply"u8, YamuxFlags.Fin);
        Assert.Equal("reply"u8.ToArray(), await ReadAllAsync(stream).WaitAsync(Patience));
        await EventuallyAsync(() => session.StreamCount == 0, "the closed stream to be retired");
    }

    [Fact]
    public async Task Data_after_the_peers_fin_is_a_protocol_error()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendDataAsync(1, "a"u8, YamuxFlags.Syn | YamuxFlags.Fin);
        await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await peer.SendDataAsync(1, "b"u8);
        await AssertProtocolErrorAsync(session, peer, "after its FIN");
    }

    [Fact]
    public async Task A_go_away_stops_new_streams_but_open_ones_go_on()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await peer.SendAsync(YamuxFrameType.GoAway, YamuxFlags.None, 0, (uint)YamuxGoAwayCode.Normal);
        await EventuallyAsync(() => session.RemoteGoingAway, "the go-away to be seen");
        var e = await Assert.ThrowsAsync<SecureMeshException>(async () => await session.OpenStreamAsync());
        Assert.Contains("going away", e.Message, StringComparison.Ordinal);

        await peer.SendDataAsync(1, "still here"u8, YamuxFlags.Fin);
        Assert.Equal("still here"u8.ToArray(), await ReadAllAsync(stream).WaitAsync(Patience));
    }

    [Fact]
    public async Task A_go_away_with_an_error_code_ends_the_session()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = peer;
        await peer.SendAsync(YamuxFrameType.GoAway, YamuxFlags.None, 0, (uint)YamuxGoAwayCode.InternalError);
        await session.Completion.WaitAsync(Patience);
        Assert.Contains("internal error", session.ClosedReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_peer_that_never_reads_holds_our_writer_at_its_window()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        var writing = stream.WriteAsync(new byte[8 * 1024 * 1024]).AsTask();

        long received = 0;
        while (received < YamuxOptions.InitialWindow)
        {
            var (header, payload) = await peer.ExpectAsync(h => h.Type == YamuxFrameType.Data, "data");
            received += payload.Length;
        }
        Assert.Equal(YamuxOptions.InitialWindow, received);
        await Task.Delay(300);
        Assert.False(writing.IsCompleted);
        Assert.Equal(0, stream.SendWindow);

        // A credit of 1000 lets exactly 1000 more bytes through.
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.None, 1, 1000);
        var (more, morePayload) = await peer.ExpectAsync(h => h.Type == YamuxFrameType.Data, "the next data");
        Assert.Equal(1000, morePayload.Length);
        Assert.False(writing.IsCompleted);
    }

    [Fact]
    public async Task A_connection_cut_inside_a_frame_ends_the_session_and_fails_its_streams()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await peer.SendDataAsync(1, "abc"u8, YamuxFlags.Syn);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await peer.SendRawAsync(RawPeer.Frame(YamuxFrameType.Data, YamuxFlags.None, 1, 100, new byte[100])[..20]); // header and 8 of 100 bytes
        peer.Stream.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        await session.Completion.WaitAsync(Patience);
        await peer.DisposeAsync();
        // What arrived is still readable (the payload is delivered as it comes), then the failure.
        var received = new List<byte>();
        var buffer = new byte[64];
        var e = await Assert.ThrowsAsync<SecureMeshException>(async () =>
        {
            while (true)
            {
                var n = await stream.ReadAsync(buffer);
                Assert.NotEqual(0, n); // never a clean end of stream
                received.AddRange(buffer[..n]);
            }
        });
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
        Assert.Equal("abc"u8.ToArray(), received.Take(3));
        Assert.Equal(11, received.Count);
    }

    [Fact]
    public async Task A_flood_of_pings_never_read_back_does_not_stop_the_session()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        var flood = new byte[12 * 20_000];
        for (var i = 0; i < 20_000; i++)
        {
            RawPeer.Frame(YamuxFrameType.Ping, YamuxFlags.Syn, 0, (uint)i).CopyTo(flood, i * 12);
        }
        await peer.SendRawAsync(flood);
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        Assert.Equal(1u, stream.Id);
        Assert.Null(session.ClosedReason);
    }
}

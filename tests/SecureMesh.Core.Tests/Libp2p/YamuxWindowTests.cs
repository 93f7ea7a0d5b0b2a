using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core.Libp2p.Yamux;
using static SecureMesh.Core.Tests.Libp2p.YamuxKit;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// Receive-window auto-tuning (rust-libp2p#4970): a window update once half the window is read; the window doubles when
/// that half went by in under two round trips, up to the stream maximum and within the connection budget. The clock is
/// a <see cref="FakeTimeProvider"/>, so "fast" and "slow" are exact; the bytes travel over real loopback TCP.
/// </summary>
public class YamuxWindowTests
{
    private const uint Window = YamuxOptions.InitialWindow;

    /// <summary>Our session (server) and a raw client, with a measured round trip of 50 ms on the fake clock.</summary>
    private static async Task<(YamuxSession Session, RawPeer Peer, FakeTimeProvider Time)> WithRoundTripAsync(YamuxOptions? options = null)
    {
        var time = new FakeTimeProvider();
        var (session, peer) = await AgainstRawClientAsync(options ?? Quiet(), time);
        var ping = session.PingAsync();
        var (syn, _) = await peer.ExpectAsync(h => h.Type == YamuxFrameType.Ping, "our ping");
        time.Advance(TimeSpan.FromMilliseconds(50));
        await peer.SendAsync(YamuxFrameType.Ping, YamuxFlags.Ack, 0, syn.Length);
        Assert.Equal(TimeSpan.FromMilliseconds(50), await ping.WaitAsync(Patience));
        return (session, peer, time);
    }

    private static Task<(YamuxHeader Header, byte[] Payload)> NextCreditAsync(RawPeer peer, uint streamId) =>
        peer.ExpectAsync(h => h.Type == YamuxFrameType.WindowUpdate && h.StreamId == streamId && h.Length > 0, "a window update");

    private static async Task SendAsync(RawPeer peer, uint streamId, uint bytes, YamuxFlags flags = YamuxFlags.None)
    {
        var chunk = new byte[256 * 1024];
        while (bytes > 0)
        {
            var n = (int)Math.Min(bytes, (uint)chunk.Length);
            await peer.SendDataAsync(streamId, chunk.AsSpan(0, n), flags);
            flags = YamuxFlags.None;
            bytes -= (uint)n;
        }
    }

    [Fact]
    public async Task The_window_doubles_while_it_is_consumed_within_two_round_trips_up_to_16_MiB()
    {
        var (session, peer, _) = await WithRoundTripAsync();
        await using var owned1 = session;
        await using var owned2 = peer;

        // The raw peer is a well-behaved sender: it sends all the credit it has, our reader reads it all at once (no
        // time passes on the fake clock: faster than two round trips), and the peer collects the credit granted
        // meanwhile (a ping answer marks the end of what was queued).
        long credit = Window;
        var flags = YamuxFlags.Syn;
        YamuxStream? stream = null;
        var windows = new List<uint>();
        for (var round = 0; round < 12; round++)
        {
            await SendAsync(peer, 1, (uint)credit, flags);
            flags = YamuxFlags.None;
            stream ??= await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
            await ReadExactlyAsync(stream, new byte[credit]);
            credit = await CollectCreditAsync(peer, 1);
            windows.Add(stream.ReceiveWindow);
        }
        Assert.Equal(2 * Window, windows[0]);
        Assert.Equal(windows.Order(), windows);                    // it only grows
        Assert.Equal(16u << 20, windows[^1]);                      // to the stream maximum
        Assert.Equal((16L << 20) - Window, session.WindowGrowthInUse);

        // Exactly the granted credit is accepted, not a byte more.
        await SendAsync(peer, 1, (uint)credit);
        await EventuallyAsync(() => stream!.BufferedBytes == credit, "the credit's worth of data to arrive");
        await peer.SendDataAsync(1, new byte[1]);
        Assert.Equal(YamuxGoAwayCode.ProtocolError, await peer.ExpectGoAwayAndCloseAsync());
    }

    /// <summary>Reads frames up to the answer of a ping sent now, summing the window updates for the stream (the credit still unspent is not counted).</summary>
    private static async Task<long> CollectCreditAsync(RawPeer peer, uint streamId)
    {
        await peer.SendAsync(YamuxFrameType.Ping, YamuxFlags.Syn, 0, 4242);
        long credit = 0;
        while (true)
        {
            var (header, _) = await peer.ExpectAsync(_ => true, "the ping answer");
            if (header.Type == YamuxFrameType.Ping && header.Length == 4242)
            {
                return credit;
            }
            if (header.Type == YamuxFrameType.WindowUpdate && header.StreamId == streamId)
            {
                credit += header.Length;
            }
        }
    }

    [Fact]
    public async Task A_slow_reader_keeps_the_initial_window()
    {
        var (session, peer, time) = await WithRoundTripAsync();
        await using var owned1 = session;
        await using var owned2 = peer;

        await SendAsync(peer, 1, Window, YamuxFlags.Syn);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await EventuallyAsync(() => stream.BufferedBytes == (int)Window, "the window's worth");
        time.Advance(TimeSpan.FromMilliseconds(100)); // two round trips: not faster than the path
        await ReadExactlyAsync(stream, new byte[Window]);
        var (update, _) = await NextCreditAsync(peer, 1);
        Assert.Equal(Window, update.Length);
        Assert.Equal(Window, stream.ReceiveWindow);
        Assert.Equal(0, session.WindowGrowthInUse);
    }

    [Fact]
    public async Task No_update_is_sent_before_half_the_window_is_read()
    {
        var (session, peer, _) = await WithRoundTripAsync();
        await using var owned1 = session;
        await using var owned2 = peer;

        await SendAsync(peer, 1, Window, YamuxFlags.Syn);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await ReadExactlyAsync(stream, new byte[(Window / 2) - 1]);
        // The ping's answer comes before any window update: none was queued.
        await peer.SendAsync(YamuxFrameType.Ping, YamuxFlags.Syn, 0, 9);
        var (next, _) = await peer.ExpectAsync(h => h.Type != YamuxFrameType.WindowUpdate || h.Length > 0, "the next frame");
        Assert.True(next.Type == YamuxFrameType.Ping, next.ToString());

        await ReadExactlyAsync(stream, new byte[1]);
        var (update, _) = await NextCreditAsync(peer, 1);
        // Half read fast: doubled to 512 KiB; the other half is still buffered, so 384 KiB are credited.
        Assert.Equal((2 * Window) - (Window / 2), update.Length);
        Assert.Equal(2 * Window, stream.ReceiveWindow);
    }

    [Fact]
    public async Task Growth_stays_within_the_connection_budget_and_is_returned_when_a_stream_ends()
    {
        // Two streams guaranteed their initial windows, and 256 KiB to grow into between them.
        var options = Quiet(maxStreams: 2, connectionWindow: 3L * Window);
        var (session, peer, _) = await WithRoundTripAsync(options);
        await using var owned1 = session;
        await using var owned2 = peer;

        await SendAsync(peer, 1, Window, YamuxFlags.Syn);
        await SendAsync(peer, 3, Window, YamuxFlags.Syn);
        var first = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        var second = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);

        // Each window is read in one go once it has all arrived, so each read brings exactly one update.
        await EventuallyAsync(() => first.BufferedBytes == Window && second.BufferedBytes == Window, "both windows to arrive");
        await ReadExactlyAsync(first, new byte[Window]);
        Assert.Equal(2 * Window, (await NextCreditAsync(peer, 1)).Header.Length);
        await ReadExactlyAsync(second, new byte[Window]);
        Assert.Equal(Window, (await NextCreditAsync(peer, 3)).Header.Length); // the budget is spent
        Assert.Equal(Window, session.WindowGrowthInUse);

        // Stream 1 ends: its growth goes back to the budget, and stream 3 may now grow.
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Rst, 1, 0);
        await EventuallyAsync(() => session.WindowGrowthInUse == 0, "the budget to be returned");
        await SendAsync(peer, 3, Window);
        await EventuallyAsync(() => second.BufferedBytes == Window, "the next window to arrive");
        await ReadExactlyAsync(second, new byte[Window]);
        Assert.Equal(2 * Window, (await NextCreditAsync(peer, 3)).Header.Length);
    }

    [Fact]
    public async Task Without_a_measured_round_trip_the_window_never_grows()
    {
        var (session, peer) = await AgainstRawClientAsync(Quiet(), new FakeTimeProvider());
        await using var owned1 = session;
        await using var owned2 = peer;

        await SendAsync(peer, 1, Window, YamuxFlags.Syn);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await EventuallyAsync(() => stream.BufferedBytes == Window, "the window to arrive");
        await ReadExactlyAsync(stream, new byte[Window]);
        Assert.Equal(Window, (await NextCreditAsync(peer, 1)).Header.Length);
    }

    [Fact]
    public async Task A_larger_window_granted_by_the_peer_is_used()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await using var owned1 = session;
        await using var owned2 = peer;

        // The peer opens with a window of 256 KiB + 1 MiB.
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 1 << 20);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);
        await EventuallyAsync(() => stream.SendWindow == Window + (1 << 20), "the grant to be applied");
        await stream.WriteAsync(new byte[Window + (1 << 20)]).AsTask().WaitAsync(Patience); // never blocks
        Assert.Equal(0, stream.SendWindow);
    }
}

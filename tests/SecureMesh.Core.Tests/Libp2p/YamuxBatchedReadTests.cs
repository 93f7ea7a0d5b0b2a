using SecureMesh.Core.Libp2p.Yamux;
using static SecureMesh.Core.Tests.Libp2p.YamuxKit;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// <see cref="YamuxStream.ReadAsync(Memory{byte}, int, CancellationToken)"/>: a reader that knows how much is coming is
/// woken once that much has arrived, not for every frame, but never waits for more than half of what the window lets
/// the peer send (so the peer is never stalled waiting for our credit).
/// </summary>
public class YamuxBatchedReadTests
{
    /// <summary>Our session, a raw peer, and the stream 1 the peer opened.</summary>
    private static async Task<(YamuxSession Session, RawPeer Peer, YamuxStream Stream)> StreamFromRawPeerAsync()
    {
        var (session, peer) = await AgainstRawClientAsync();
        await peer.SendAsync(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        return (session, peer, await session.AcceptStreamAsync().AsTask().WaitAsync(Patience));
    }

    [Fact]
    public async Task A_reader_waiting_for_a_known_length_gets_it_in_one_read_though_it_arrives_in_many_frames()
    {
        var (session, peer, stream) = await StreamFromRawPeerAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        var buffer = new byte[100_000];
        var read = stream.ReadAsync(buffer, buffer.Length).AsTask();

        var payload = RandomBytes(100_000, 5);
        for (var i = 0; i < 10; i++)
        {
            await peer.SendDataAsync(1, payload.AsSpan(i * 10_000, 10_000));
            await Task.Delay(20);
            Assert.False(read.IsCompleted && i < 9, $"woken after frame {i + 1} of 10");
        }

        Assert.Equal(payload.Length, await read.WaitAsync(Patience));
        Assert.Equal(payload, buffer);
    }

    [Fact]
    public async Task A_reader_waiting_for_more_than_the_window_allows_is_woken_at_half_the_window()
    {
        var (session, peer, stream) = await StreamFromRawPeerAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        var buffer = new byte[4 * 1024 * 1024];
        var read = stream.ReadAsync(buffer, buffer.Length).AsTask();

        // The peer may send 256 KiB before we credit it; it sends 200 KiB and waits (as a sender at its window would).
        var payload = RandomBytes(200 * 1024, 9);
        for (var i = 0; i < 200; i++)
        {
            await peer.SendDataAsync(1, payload.AsSpan(i * 1024, 1024));
        }

        var n = await read.WaitAsync(Patience);
        Assert.InRange(n, (int)YamuxOptions.InitialWindow / 2, payload.Length);
        Assert.Equal(payload.AsSpan(0, n).ToArray(), buffer.AsSpan(0, n).ToArray());
    }

    [Fact]
    public async Task A_reader_waiting_for_more_gets_what_is_left_when_the_peer_half_closes()
    {
        var (session, peer, stream) = await StreamFromRawPeerAsync();
        await using var owned1 = session;
        await using var owned2 = peer;
        var buffer = new byte[1000];
        var read = stream.ReadAsync(buffer, buffer.Length).AsTask();

        await peer.SendDataAsync(1, "only this"u8, YamuxFlags.Fin);

        Assert.Equal(9, await read.WaitAsync(Patience));
        Assert.Equal(0, await stream.ReadAsync(buffer, buffer.Length).AsTask().WaitAsync(Patience));
    }
}

using System.Runtime.InteropServices;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Yamux;
using static SecureMesh.Core.Tests.Libp2p.YamuxKit;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// How data reaches the transport: a stream's writer writes its frames itself, a large payload straight from the
/// caller's buffer (no copy) together with the frames queued before it in one gathered write, in the order they were
/// queued; and a payload arriving in short transport reads is still delivered whole.
/// </summary>
public class YamuxSendPathTests
{
    [Fact]
    public async Task A_large_write_goes_from_the_callers_buffer_right_after_its_header_in_one_gathered_write()
    {
        var transport = new RecordingTransport();
        var session = new YamuxSession(transport, isClient: true, Quiet());
        var stream = await session.OpenStreamAsync();
        var payload = RandomBytes(100_000, 7);

        await stream.WriteAsync(payload).AsTask().WaitAsync(Patience);

        var (first, second) = Assert.Single(transport.Gathered);
        // The payload is the caller's own array: not copied into a frame buffer on the way.
        Assert.True(MemoryMarshal.TryGetArray(second, out var segment));
        Assert.Same(payload, segment.Array);
        Assert.Equal(payload.Length, second.Length);
        // Right before it, in the same write: the data frame's header. The stream's SYN (queued by the open) goes in
        // that write too, unless the send loop flushed it on its own first (a plain write of just the SYN).
        var syn = RawPeer.Frame(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        Assert.Equal(RawPeer.Frame(YamuxFrameType.Data, YamuxFlags.None, 1, (uint)payload.Length), first[^12..]);
        if (first.Length == 24)
        {
            Assert.Equal(syn, first[..12]);
            Assert.Empty(transport.Plain);
        }
        else
        {
            Assert.Equal(12, first.Length);
            Assert.Equal(syn, Assert.Single(transport.Plain));
        }
        await session.DisposeAsync();
    }

    [Fact]
    public async Task A_small_write_is_copied_into_one_plain_write_after_the_queued_frames()
    {
        var transport = new RecordingTransport();
        var session = new YamuxSession(transport, isClient: true, Quiet());
        var stream = await session.OpenStreamAsync();

        await stream.WriteAsync("hello"u8.ToArray()).AsTask().WaitAsync(Patience);

        Assert.Empty(transport.Gathered);
        // The SYN queued by the open goes in the same plain write, unless the send loop flushed it on its own first;
        // either way the bytes on the wire are the SYN, then the data frame, and the data frame is one copied write.
        byte[] syn = RawPeer.Frame(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0);
        byte[] data = RawPeer.Frame(YamuxFrameType.Data, YamuxFlags.None, 1, 5, "hello"u8);
        Assert.InRange(transport.Plain.Count, 1, 2);
        Assert.Equal([.. syn, .. data], transport.Plain.SelectMany(w => w).ToArray());
        Assert.Equal(data, transport.Plain[^1][^data.Length..]);
        await session.DisposeAsync();
    }

    [Fact]
    public async Task A_payload_arriving_in_tiny_transport_reads_is_delivered_whole_and_in_order()
    {
        // The peer's transport hands out the frame a few bytes at a time (as a Noise stream does with tiny frames).
        var payload = RandomBytes(200_000, 3);
        byte[] wire = [.. RawPeer.Frame(YamuxFrameType.WindowUpdate, YamuxFlags.Syn, 1, 0), .. RawPeer.Frame(YamuxFrameType.Data, YamuxFlags.Fin, 1, (uint)payload.Length, payload)];
        var transport = new RecordingTransport(wire, readSize: 7);
        var session = new YamuxSession(transport, isClient: false, Quiet());
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(Patience);

        var received = await ReadAllAsync(stream).WaitAsync(Patience);

        Assert.Equal(payload, received);
        await session.DisposeAsync();
    }

    /// <summary>Records what the session writes (gathered or plain); reads give <c>incoming</c> in pieces of at most <c>readSize</c>, then wait.</summary>
    private sealed class RecordingTransport(byte[]? incoming = null, int readSize = int.MaxValue) : DuplexStream, IGatheringStream
    {
        private int _offset;

        public List<(byte[] First, ReadOnlyMemory<byte> Second)> Gathered { get; } = [];

        public List<byte[]> Plain { get; } = [];

        public ValueTask WriteAsync(ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second, CancellationToken cancellationToken)
        {
            lock (Gathered)
            {
                Gathered.Add((first.ToArray(), second));
            }
            return ValueTask.CompletedTask;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            // The go-away written on close is not part of what the tests look at.
            if (!(buffer.Length == 12 && buffer.Span[1] == (byte)YamuxFrameType.GoAway))
            {
                lock (Gathered)
                {
                    Plain.Add(buffer.ToArray());
                }
            }
            return ValueTask.CompletedTask;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var wire = incoming ?? [];
            if (_offset == wire.Length)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            var n = Math.Min(Math.Min(buffer.Length, readSize), wire.Length - _offset);
            wire.AsSpan(_offset, n).CopyTo(buffer.Span);
            _offset += n;
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    }
}

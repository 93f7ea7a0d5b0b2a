using System.Buffers;

namespace SecureMesh.Core.Libp2p.Yamux;

/// <summary>
/// The bytes a stream has received and the application has not read yet, in pooled segments. Its length never
/// exceeds the stream's receive window (the session checks every data frame before appending), so it is bounded.
/// Not thread-safe: the stream's lock guards it.
/// </summary>
internal sealed class ReceiveBuffer
{
    internal const int SegmentSize = 64 * 1024;

    private Segment[] _ring = new Segment[4];
    private int _head;
    private int _count;

    public int Length { get; private set; }

    public void Append(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (_count == 0 || _ring[(_head + _count - 1) % _ring.Length].End == _ring[(_head + _count - 1) % _ring.Length].Array.Length)
            {
                AddSegment(ArrayPool<byte>.Shared.Rent(SegmentSize), 0);
            }
            ref var tail = ref _ring[(_head + _count - 1) % _ring.Length];
            var n = Math.Min(tail.Array.Length - tail.End, data.Length);
            data[..n].CopyTo(tail.Array.AsSpan(tail.End));
            tail.End += n;
            Length += n;
            data = data[n..];
        }
    }

    /// <summary>Takes <paramref name="array"/> (rented from the shared pool, its first <paramref name="length"/> bytes filled) as the next segment, without a copy.</summary>
    public void AppendOwned(byte[] array, int length)
    {
        AddSegment(array, length);
        Length += length;
    }

    /// <summary>Moves up to <paramref name="destination"/>'s length of bytes out; returns how many.</summary>
    public int Read(Span<byte> destination)
    {
        var copied = 0;
        while (_count > 0 && copied < destination.Length)
        {
            ref var head = ref _ring[_head];
            var n = Math.Min(head.End - head.Start, destination.Length - copied);
            head.Array.AsSpan(head.Start, n).CopyTo(destination[copied..]);
            head.Start += n;
            copied += n;
            if (head.Start == head.End)
            {
                ArrayPool<byte>.Shared.Return(head.Array);
                head = default;
                _head = (_head + 1) % _ring.Length;
                _count--;
            }
        }
        Length -= copied;
        return copied;
    }

    /// <summary>Drops everything and returns the segments to the pool.</summary>
    public void Clear()
    {
        while (_count > 0)
        {
            ArrayPool<byte>.Shared.Return(_ring[_head].Array);
            _ring[_head] = default;
            _head = (_head + 1) % _ring.Length;
            _count--;
        }
        _head = 0;
        Length = 0;
    }

    private void AddSegment(byte[] array, int filled)
    {
        if (_count == _ring.Length)
        {
            var larger = new Segment[_ring.Length * 2];
            for (var i = 0; i < _count; i++)
            {
                larger[i] = _ring[(_head + i) % _ring.Length];
            }
            _ring = larger;
            _head = 0;
        }
        _ring[(_head + _count) % _ring.Length] = new Segment { Array = array, End = filled };
        _count++;
    }

    private struct Segment
    {
        public byte[] Array;
        public int Start;
        public int End;
    }
}

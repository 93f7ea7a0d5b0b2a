using System.Buffers;
using System.Buffers.Binary;

namespace SecureMesh.Core.Channel;

/// <summary>
/// Reads frames prefixed by a 2-byte big-endian length from a stream. Buffers are pooled and sized from the pool's
/// fixed sizes, never from a length read from the wire: a small one (<see cref="SmallBufferSize"/>) for a connection
/// that only exchanges small frames (handshakes, pings, control), and a large one, bigger than the biggest possible
/// frame, taken as soon as a frame does not fit in the small one or a read fills it (data is streaming), so several
/// frames are read per system call. A returned frame stays valid until the next read.
/// </summary>
internal sealed class FrameReader : IDisposable
{
    public const int MaxFrameLength = 65535;
    internal const int SmallBufferSize = 4 * 1024;
    internal const int LargeBufferSize = 256 * 1024;

    private readonly Stream _stream;
    private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(SmallBufferSize);
    private int _start;
    private int _end;
    private int _highWater;
    private volatile bool _disposed;

    public FrameReader(Stream stream) => _stream = stream;

    /// <summary>False while an idle connection waits for data without a buffer.</summary>
    internal bool HoldsBuffer => Volatile.Read(ref _buffer) is not null;

    /// <summary>The size of the buffer held now (0 while idle).</summary>
    internal int BufferLength => Volatile.Read(ref _buffer)?.Length ?? 0;

    /// <summary>Bytes read from the stream so far, less those handed out by <see cref="ReadRawAsync"/>.</summary>
    public long BytesRead { get; private set; }

    /// <summary>
    /// True while a connection is being upgraded: the reader keeps its buffer while it waits. An upgrade waits for
    /// every message, and giving the buffer back costs a probe of the socket and a zero-byte read each time (two system
    /// calls per handshake message); an idle connection is never in this state.
    /// </summary>
    internal bool KeepBufferWhileWaiting { get; set; }

    /// <summary>Bytes received and not read yet.</summary>
    internal int BufferedBytes => _end - _start;

    /// <summary>
    /// Unframed bytes for the part of the upgrade before Noise (multistream-select): what is buffered, else what one read
    /// of the stream brings (as much as has arrived, so a message and whatever the peer sent after it, such as its first
    /// Noise message, take one system call; the rest stays buffered for the frames). 0 at the end of the stream.
    /// </summary>
    internal async ValueTask<int> ReadRawAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_buffer is null, this);
        if (destination.IsEmpty || (_end == _start && !await FillAsync(1, cancellationToken)))
        {
            return 0;
        }
        var n = Math.Min(destination.Length, _end - _start);
        _buffer!.AsSpan(_start, n).CopyTo(destination.Span);
        _start += n;
        BytesRead -= n;
        return n;
    }

    /// <summary>
    /// The next frame's body, or <c>null</c> when the stream ended cleanly between frames.
    /// Throws <see cref="SecureMeshException"/> (Protocol) when it ends inside a frame.
    /// </summary>
    public async ValueTask<Memory<byte>?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_buffer is null, this);
        if (!await FillAsync(2, cancellationToken))
        {
            if (_end == _start)
            {
                return null;
            }
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "connection ended inside a frame length");
        }
        // FillAsync may have swapped the buffer (an idle wait): always read _buffer after it.
        int length = BinaryPrimitives.ReadUInt16BigEndian(_buffer!.AsSpan(_start, 2));
        if (!await FillAsync(2 + length, cancellationToken))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "connection ended inside a frame (truncated frame)");
        }
        var frame = _buffer!.AsMemory(_start + 2, length);
        _start += 2 + length;
        return frame;
    }

    /// <summary>Makes sure <paramref name="count"/> bytes are buffered from <c>_start</c>; false at end of stream.</summary>
    private async ValueTask<bool> FillAsync(int count, CancellationToken cancellationToken)
    {
        var buffer = _buffer!;
        if (_end - _start >= count)
        {
            return true;
        }
        if (_start == _end)
        {
            _start = _end = 0;
            if (!KeepBufferWhileWaiting && _stream is System.Net.Sockets.NetworkStream { DataAvailable: false })
            {
                // Nothing is waiting: an idle connection should hold no buffer. It goes back to the pool while a
                // zero-byte read waits for the next bytes, and a small one is rented when they come.
                buffer = await WaitIdleAsync(cancellationToken);
            }
        }
        if (buffer.Length < count)
        {
            // A frame larger than the small buffer: the large one holds any frame.
            buffer = Grow();
        }
        else if (buffer.Length - _start < (buffer.Length >= LargeBufferSize ? MaxFrameLength + 2 : count))
        {
            // Move the partial frame to the front, so every read has room for at least a whole frame (the large
            // buffer) or for the frame being read (the small one).
            Buffer.BlockCopy(buffer, _start, buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        while (_end - _start < count)
        {
            var room = buffer.Length - _end;
            var read = await _stream.ReadAsync(buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                return false;
            }
            _end += read;
            _highWater = Math.Max(_highWater, _end);
            BytesRead += read;
            if (read == room && room >= SmallBufferSize / 2 && buffer.Length < LargeBufferSize)
            {
                // The read filled half the small buffer or more: data is streaming, so read it in large pieces from now on.
                buffer = Grow();
            }
        }
        return true;
    }

    /// <summary>Moves what is buffered to the front of a large buffer and gives the small one back (wiped).</summary>
    private byte[] Grow()
    {
        var small = _buffer!;
        var large = ArrayPool<byte>.Shared.Rent(LargeBufferSize);
        var held = _end - _start;
        Buffer.BlockCopy(small, _start, large, 0, held);
        _buffer = large;
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(small.AsSpan(0, _highWater));
        ArrayPool<byte>.Shared.Return(small);
        _start = 0;
        _end = held;
        _highWater = held;
        return large;
    }

    /// <summary>Returns the (empty) buffer to the pool, waits for data without one, and rents a buffer again.</summary>
    private async ValueTask<byte[]> WaitIdleAsync(CancellationToken cancellationToken)
    {
        Release();
        try
        {
            // A zero-byte read completes when data is there (or the stream ends), without taking any.
#pragma warning disable CA2022 // nothing is read: the byte count of a zero-byte read carries no information
            await _stream.ReadAsync(Memory<byte>.Empty, cancellationToken);
#pragma warning restore CA2022
        }
        finally
        {
            // Also after a cancelled wait: the reader stays usable (nothing was consumed), unless it was disposed.
            if (!_disposed)
            {
                _buffer = ArrayPool<byte>.Shared.Rent(SmallBufferSize);
            }
        }
        return _buffer ?? throw new ObjectDisposedException(nameof(FrameReader));
    }

    /// <summary>Clears what the buffer held (decrypted plaintext) and returns it to the pool.</summary>
    private void Release()
    {
        var buffer = _buffer;
        _buffer = null;
        if (buffer is not null)
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(buffer.AsSpan(0, _highWater));
            _highWater = 0;
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public void Dispose()
    {
        _disposed = true;
        Release();
    }
}

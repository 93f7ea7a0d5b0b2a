using System.Buffers;
using System.Buffers.Binary;

namespace SecureMesh.Core.Channel;

/// <summary>
/// Reads frames prefixed by a 2-byte big-endian length from a stream. The buffer is fixed (pooled) and larger than
/// the biggest possible frame, so no length read from the wire ever causes an allocation. Several frames are
/// read per system call when they are available. A returned frame stays valid until the next read.
/// </summary>
internal sealed class FrameReader : IDisposable
{
    public const int MaxFrameLength = 65535;
    private const int BufferSize = 256 * 1024;

    private readonly Stream _stream;
    private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
    private int _start;
    private int _end;
    private int _highWater;

    public FrameReader(Stream stream) => _stream = stream;

    /// <summary>Bytes read from the stream so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>
    /// The next frame's body, or <c>null</c> when the stream ended cleanly between frames.
    /// Throws <see cref="SecureMeshException"/> (Protocol) when it ends inside a frame.
    /// </summary>
    public async ValueTask<Memory<byte>?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(FrameReader));
        if (!await FillAsync(2, cancellationToken))
        {
            if (_end == _start)
            {
                return null;
            }
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "connection ended inside a frame length");
        }
        int length = BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(_start, 2));
        if (!await FillAsync(2 + length, cancellationToken))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "connection ended inside a frame (truncated frame)");
        }
        var frame = buffer.AsMemory(_start + 2, length);
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
        }
        else if (buffer.Length - _start < MaxFrameLength + 2)
        {
            // Move the partial frame to the front, so every read has room for at least a whole frame.
            Buffer.BlockCopy(buffer, _start, buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        while (_end - _start < count)
        {
            var read = await _stream.ReadAsync(buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                return false;
            }
            _end += read;
            _highWater = Math.Max(_highWater, _end);
            BytesRead += read;
        }
        return true;
    }

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = null;
        if (buffer is not null)
        {
            // It held decrypted plaintext: clear what was used before it goes back to the pool.
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(buffer.AsSpan(0, _highWater));
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

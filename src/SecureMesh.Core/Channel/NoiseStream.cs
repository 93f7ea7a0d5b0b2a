using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Channel;

/// <summary>
/// A libp2p Noise secured connection as a duplex byte stream: what is written is cut into Noise transport messages of at
/// most 65519 bytes of plaintext, each sealed and sent with its 2-byte big-endian length (libp2p noise spec); what is read
/// is the decrypted bytes in order, with no framing of its own (a stream muxer runs on top). One reader and one writer
/// may work at once. A frame that fails decryption, a frame cut short or a write cancelled part-way ends the stream for
/// good; a clean end of the connection between frames reads as the end of the stream.
/// </summary>
public sealed class NoiseStream : Stream, IGatheringStream
{
    private const int SendBufferSize = 4 * (FrameReader.MaxFrameLength + 2);
    private const int MaxFramePlaintext = FrameReader.MaxFrameLength - CipherState.TagLength;
    private static readonly TimeSpan DisposeWait = TimeSpan.FromSeconds(5);

    private readonly Stream _inner;
    private readonly FrameReader _reader;
    private readonly TransportState _transport;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _readLock = new(1, 1);
    private Memory<byte> _plain;
    private long _bytesSent;
    private volatile string? _closedReason;
    private int _disposed;

    internal NoiseStream(Stream inner, NoiseHandshake.HandshakeOutcome handshake)
    {
        _inner = inner;
        _reader = handshake.Reader;
        _transport = handshake.Transport;
        _bytesSent = handshake.BytesWritten;
        RemotePeerId = handshake.RemotePeer;
        RemoteStreamMuxers = handshake.RemoteProtocols;
    }

    /// <summary>The authenticated Peer ID of the other side.</summary>
    public PeerId RemotePeerId { get; }

    /// <summary>The stream muxers the peer listed in its handshake payload's extensions (empty when it listed none).</summary>
    public IReadOnlyList<string> RemoteStreamMuxers { get; }

    /// <summary>The Noise handshake hash, equal on both sides (see <see cref="ShortAuthString.From"/>).</summary>
    public byte[] HandshakeHash => (byte[])_transport.HandshakeHash.Clone();

    /// <summary>Bytes written to the network, handshake included.</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);

    /// <summary>Bytes read from the network, multistream-select excluded, handshake included.</summary>
    public long BytesReceived => _reader.BytesRead;

    /// <summary>Why the stream ended, or null while it is usable.</summary>
    public string? ClosedReason => _closedReason;

    /// <inheritdoc/>
    public override bool CanRead => true;

    /// <inheritdoc/>
    public override bool CanWrite => true;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <inheritdoc/>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        await _readLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfClosed();
            while (_plain.IsEmpty)
            {
                Memory<byte>? frame;
                try
                {
                    // A read cancelled here consumed nothing: the frame reader keeps what it has for the next read.
                    frame = await _reader.ReadFrameAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (SecureMeshException e)
                {
                    throw Fail(e.Message);
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                {
                    throw Fail("the connection broke while receiving", e);
                }
                if (frame is not { } ciphertext)
                {
                    return 0;
                }
                var direct = ciphertext.Length >= CipherState.TagLength && ciphertext.Length - CipherState.TagLength <= buffer.Length;
                if (!_transport.TryDecrypt(ciphertext.Span, direct ? buffer.Span : ciphertext.Span, out var written))
                {
                    throw Fail("a transport frame failed decryption");
                }
                if (direct)
                {
                    if (written > 0)
                    {
                        return written;
                    }
                    continue;
                }
                _plain = ciphertext[..written];
            }
            var n = Math.Min(_plain.Length, buffer.Length);
            _plain[..n].CopyTo(buffer);
            _plain = _plain[n..];
            return n;
        }
        finally
        {
            _readLock.Release();
        }
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count), CancellationToken.None).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        buffer.IsEmpty ? ValueTask.CompletedTask : WriteFramesAsync(buffer, default, cancellationToken);

    /// <summary>
    /// Seals <paramref name="first"/> and then <paramref name="second"/>, each cut into its own transport frames, and
    /// sends them in one write (as far as the send buffer holds them): a muxer's header and a payload taken straight
    /// from its writer, with the payload's frames starting at a frame boundary for the reader.
    /// </summary>
    ValueTask IGatheringStream.WriteAsync(ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second, CancellationToken cancellationToken) =>
        WriteFramesAsync(first, second, cancellationToken);

    private async ValueTask WriteFramesAsync(ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        byte[]? send = null;
        try
        {
            ThrowIfClosed();
            // Rented for this write only (it holds ciphertext, nothing to wipe): an idle connection holds no send buffer.
            send = ArrayPool<byte>.Shared.Rent((int)Math.Min(SendBufferSize, SealedLength(first.Length) + SealedLength(second.Length)));
            var used = 0;
            for (var part = 0; part < 2; part++)
            {
                var buffer = part == 0 ? first : second;
                var done = 0;
                while (done < buffer.Length)
                {
                    var chunk = Math.Min(MaxFramePlaintext, buffer.Length - done);
                    if (used + 2 + chunk + CipherState.TagLength > send.Length)
                    {
                        await WriteInnerAsync(send, used, cancellationToken).ConfigureAwait(false);
                        used = 0;
                    }
                    var length = _transport.Encrypt(buffer.Span.Slice(done, chunk), send.AsSpan(used + 2, chunk + CipherState.TagLength));
                    BinaryPrimitives.WriteUInt16BigEndian(send.AsSpan(used), (ushort)length);
                    used += 2 + length;
                    done += chunk;
                }
            }
            await WriteInnerAsync(send, used, cancellationToken).ConfigureAwait(false);
        }
        catch (SecureMeshException e) when (_closedReason is null)
        {
            // E.g. the nonce limit: the stream cannot continue.
            throw Fail(e.Message, e);
        }
        catch (Exception e) when (e is not SecureMeshException)
        {
            throw Fail(e is OperationCanceledException ? "a write was cancelled part-way" : "the connection broke while sending", e);
        }
        finally
        {
            if (send is not null)
            {
                ArrayPool<byte>.Shared.Return(send);
            }
            _writeLock.Release();
        }
    }

    /// <summary>Bytes on the wire for <paramref name="plaintext"/> bytes: each frame adds its length and tag.</summary>
    private static long SealedLength(int plaintext) =>
        plaintext + ((long)(plaintext + MaxFramePlaintext - 1) / MaxFramePlaintext * (2 + CipherState.TagLength));

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count), CancellationToken.None).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    /// <inheritdoc/>
    public override void Flush() => _inner.Flush();

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Test seam: the transport keys, to check nonce handling.</summary>
    internal TransportState TransportForTest => _transport;

    /// <summary>Test seam: sends one transport frame sealed over arbitrary plaintext, or raw bytes on the connection.</summary>
    internal async Task SendRawForTestAsync(ReadOnlyMemory<byte> bytes, bool seal, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!seal)
            {
                await _inner.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                return;
            }
            var frame = new byte[2 + bytes.Length + CipherState.TagLength];
            var n = _transport.Encrypt(bytes.Span, frame.AsSpan(2));
            BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)n);
            await _inner.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask WriteInnerAsync(byte[] send, int count, CancellationToken cancellationToken)
    {
        if (count == 0)
        {
            return;
        }
        await _inner.WriteAsync(send.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _bytesSent, count);
    }

    private void ThrowIfClosed()
    {
        if (_closedReason is { } reason)
        {
            throw new SecureMeshException(Volatile.Read(ref _disposed) != 0 ? SecureMeshErrorKind.InvalidInput : SecureMeshErrorKind.Network, "connection closed: " + reason);
        }
    }

    /// <summary>Ends the stream for good and returns the exception to throw.</summary>
    private SecureMeshException Fail(string reason, Exception? inner = null)
    {
        if (Interlocked.CompareExchange(ref _closedReason, reason, null) is null)
        {
            _inner.Dispose();
        }
        else
        {
            reason = _closedReason ?? reason;
        }
        var kind = inner is OperationCanceledException or IOException or SocketException or ObjectDisposedException
            ? SecureMeshErrorKind.Network
            : SecureMeshErrorKind.Protocol;
        return new SecureMeshException(kind, "connection closed: " + reason, inner);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        base.Dispose(disposing);
    }

    /// <summary>Closes the connection and wipes the keys.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Interlocked.CompareExchange(ref _closedReason, "closed locally", null);
        await _inner.DisposeAsync().ConfigureAwait(false);
        // Pending reads and writes fail quickly once the connection is gone; wait for them before wiping.
        if (!await _writeLock.WaitAsync(DisposeWait).ConfigureAwait(false))
        {
            return;
        }
        if (!await _readLock.WaitAsync(DisposeWait).ConfigureAwait(false))
        {
            _writeLock.Release();
            return;
        }
        _transport.Dispose();
        _reader.Dispose();
        _plain = default;
        _readLock.Release();
        _writeLock.Release();
        GC.SuppressFinalize(this);
    }
}

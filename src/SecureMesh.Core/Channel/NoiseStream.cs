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
public sealed class NoiseStream : DuplexStream, IGatheringStream, IImmediateReadStream, IHalfClosable
{
    private const int SendBufferSize = 4 * (FrameReader.MaxFrameLength + 2);
    private const int MaxFramePlaintext = FrameReader.MaxFrameLength - CipherState.TagLength;
    private static readonly TimeSpan DisposeWait = TimeSpan.FromSeconds(5);

    /// <summary>Bytes of a payload copied at most to seal them in one frame with a muxer header (see <see cref="MergedHead"/>).</summary>
    private const int MaxMergedCopy = 16 * 1024;

    private readonly Stream _inner;
    private readonly FrameReader _reader;
    private readonly TransportState _transport;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _readLock = new(1, 1);
    private Memory<byte> _plain;
    private Task<Memory<byte>?>? _pendingFrame; // a frame read started by TryReadImmediately that had to wait
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
                    if (_pendingFrame is { } pending)
                    {
                        frame = await pending.WaitAsync(cancellationToken).ConfigureAwait(false);
                        _pendingFrame = null;
                    }
                    else
                    {
                        frame = await _reader.ReadFrameAsync(cancellationToken).ConfigureAwait(false);
                    }
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
                var written = Decrypt(ciphertext, buffer.Span);
                if (written > 0)
                {
                    return written;
                }
            }
            return TakePlain(buffer.Span);
        }
        finally
        {
            _readLock.Release();
        }
    }

    /// <summary>
    /// Reads like <see cref="ReadAsync(Memory{byte}, CancellationToken)"/> when that needs no waiting: what is left of
    /// the last frame, or the next frame when it has been received whole (decrypted straight into <paramref name="buffer"/>
    /// when it fits). False when the bytes are not there yet (or the stream ended or failed: the next read says so).
    /// </summary>
    bool IImmediateReadStream.TryReadImmediately(Span<byte> buffer, out int read)
    {
        read = 0;
        if (buffer.IsEmpty || !_readLock.Wait(0))
        {
            return false;
        }
        try
        {
            if (_closedReason is not null)
            {
                return false;
            }
            while (_plain.IsEmpty)
            {
                Memory<byte>? frame;
                if (_pendingFrame is { } pending)
                {
                    if (!pending.IsCompletedSuccessfully)
                    {
                        return false;
                    }
                    frame = pending.Result;
                    _pendingFrame = null;
                }
                else
                {
                    var next = _reader.ReadFrameAsync(CancellationToken.None);
                    if (!next.IsCompletedSuccessfully)
                    {
                        // It waits for the network: the next ReadAsync takes it over (failures surface there).
                        _pendingFrame = next.AsTask();
                        return false;
                    }
                    frame = next.Result;
                }
                if (frame is not { } ciphertext)
                {
                    // The end of the stream: kept for the next ReadAsync, which returns 0.
                    _pendingFrame = Task.FromResult(frame);
                    return false;
                }
                read = Decrypt(ciphertext, buffer);
                if (read > 0)
                {
                    return true;
                }
            }
            read = TakePlain(buffer);
            return true;
        }
        finally
        {
            _readLock.Release();
        }
    }

    /// <summary>Completes when <see cref="IImmediateReadStream.TryReadImmediately"/> has something to read (or the next read fails or ends).</summary>
    Task IImmediateReadStream.WaitReadableAsync(CancellationToken cancellationToken)
    {
        if (!_readLock.Wait(0))
        {
            return Task.CompletedTask;
        }
        try
        {
            if (!_plain.IsEmpty || _closedReason is not null)
            {
                return Task.CompletedTask;
            }
            _pendingFrame ??= _reader.ReadFrameAsync(CancellationToken.None).AsTask();
            return _pendingFrame.WaitAsync(cancellationToken);
        }
        finally
        {
            _readLock.Release();
        }
    }

    /// <summary>
    /// Decrypts a frame straight into <paramref name="buffer"/> when it fits (returns its length), else in place,
    /// keeping it as <c>_plain</c> (returns 0, as for an empty frame). Under the read lock.
    /// </summary>
    private int Decrypt(Memory<byte> ciphertext, Span<byte> buffer)
    {
        var direct = ciphertext.Length >= CipherState.TagLength && ciphertext.Length - CipherState.TagLength <= buffer.Length;
        if (!_transport.TryDecrypt(ciphertext.Span, direct ? buffer : ciphertext.Span, out var written))
        {
            throw Fail("a transport frame failed decryption");
        }
        if (direct)
        {
            return written;
        }
        _plain = ciphertext[..written];
        return 0;
    }

    /// <summary>Moves what is left of the last frame into <paramref name="buffer"/>. Under the read lock.</summary>
    private int TakePlain(Span<byte> buffer)
    {
        var n = Math.Min(_plain.Length, buffer.Length);
        _plain.Span[..n].CopyTo(buffer);
        _plain = _plain[n..];
        return n;
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
    /// Seals <paramref name="first"/> and then <paramref name="second"/> and sends them in one write (as far as the send
    /// buffer holds them): a muxer's header and a payload taken straight from its writer. The header shares its frame
    /// with the payload's first bytes, so that the payload's other frames are full ones, sealed from the writer's
    /// buffer and decrypted by the reader straight into its own.
    /// </summary>
    ValueTask IGatheringStream.WriteAsync(ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second, CancellationToken cancellationToken) =>
        WriteFramesAsync(first, second, cancellationToken);

    /// <summary>
    /// How many bytes of <c>second</c> go into one frame with <c>first</c> so that the rest of it is whole frames: its
    /// length beyond a multiple of the frame size, when that fits beside <c>first</c> and is short enough to copy;
    /// -1 to seal the two apart (nothing to put together, or too much to copy).
    /// </summary>
    internal static int MergedHead(int first, int second)
    {
        if (first == 0 || second == 0)
        {
            return -1;
        }
        var head = second % MaxFramePlaintext;
        return head <= MaxMergedCopy && first + head <= MaxFramePlaintext ? head : -1;
    }

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
            var head = MergedHead(first.Length, second.Length);
            if (head >= 0)
            {
                // One frame for the muxer's header and the first bytes of the payload (copied in), so that the rest of
                // the payload fills whole frames sealed straight from the caller's buffer: 64 KiB behind a yamux
                // header is two frames, as 64 KiB alone is, not three.
                var plain = send.AsSpan(2, first.Length + head);
                first.Span.CopyTo(plain);
                second.Span[..head].CopyTo(plain[first.Length..]);
                var length = _transport.Encrypt(plain, send.AsSpan(2, plain.Length + CipherState.TagLength));
                BinaryPrimitives.WriteUInt16BigEndian(send, (ushort)length);
                used = 2 + length;
                first = default;
                second = second[head..];
            }
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

    /// <summary>
    /// Ends our direction of a TCP connection after the frames written (a FIN): the peer reads a clean end between
    /// frames, we can still read. False when the connection underneath is not a socket, or is gone.
    /// </summary>
    async ValueTask<bool> IHalfClosable.CloseWriteAsync(CancellationToken cancellationToken)
    {
        if (_inner is not NetworkStream network)
        {
            return false;
        }
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_closedReason is not null)
            {
                return false;
            }
            network.Socket.Shutdown(SocketShutdown.Send);
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
        finally
        {
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
        if (_pendingFrame is { } pending)
        {
            // A frame read left running by TryReadImmediately still uses the frame reader's buffer: let it fail first.
            await ((Task)pending).WaitAsync(DisposeWait).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (!pending.IsCompleted)
            {
                _readLock.Release();
                _writeLock.Release();
                return;
            }
        }
        _transport.Dispose();
        _reader.Dispose();
        _plain = default;
        _readLock.Release();
        _writeLock.Release();
        GC.SuppressFinalize(this);
    }
}

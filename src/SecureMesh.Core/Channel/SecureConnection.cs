using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Channel;

/// <summary>
/// An authenticated, encrypted connection to one peer.
/// Application messages travel in the Noise transport stream as a 4-byte big-endian length and the bytes,
/// cut into Noise frames of at most 65535 bytes (65519 of plaintext). One sender at a time (a lock), one
/// receiver at a time; any decryption failure, malformed length or cancelled transfer ends the connection for good.
/// </summary>
public sealed class SecureConnection : IAsyncDisposable
{
    /// <summary>Plaintext carried by one Noise transport frame.</summary>
    internal const int MaxFramePlaintext = FrameReader.MaxFrameLength - CipherState.TagLength;

    private const int SendBufferSize = 4 * (FrameReader.MaxFrameLength + 2);
    private static readonly TimeSpan DisposeWait = TimeSpan.FromSeconds(5);

    private readonly Stream _stream;
    private readonly FrameReader _reader;
    private readonly TransportState _transport;
    private readonly int _maxMessageSize;
    private readonly ILogger? _logger;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly SemaphoreSlim _receiveLock = new(1, 1);
    private readonly byte[] _header = new byte[4];
    private byte[]? _sendBuffer;
    private int _sendHighWater;
    private Memory<byte> _plain;
    private bool _messageInProgress;
    private long _bytesSent;
    private long _messagesSent;
    private long _messagesReceived;
    private volatile string? _closedReason;
    private int _disposed;

    internal SecureConnection(Stream stream, FrameReader reader, TransportState transport, PeerId remotePeer,
        IReadOnlyList<string> remoteProtocols, IPEndPoint? remoteEndPoint, SecureChannelOptions options, long handshakeBytesSent)
    {
        _stream = stream;
        _reader = reader;
        _transport = transport;
        _maxMessageSize = options.MaxMessageSize;
        _logger = options.Logger;
        _bytesSent = handshakeBytesSent;
        RemotePeerId = remotePeer;
        RemoteProtocols = remoteProtocols;
        RemoteEndPoint = remoteEndPoint;
    }

    /// <summary>The authenticated Peer ID of the other side.</summary>
    public PeerId RemotePeerId { get; }

    /// <summary>The Noise handshake hash, equal on both sides; feed it to <see cref="ShortAuthString.From"/> to compare out of band.</summary>
    public byte[] HandshakeHash => (byte[])_transport.HandshakeHash.Clone();

    /// <summary>The protocols the peer announced in the handshake payload (<c>extensions.stream_muxers</c>).</summary>
    public IReadOnlyList<string> RemoteProtocols { get; }

    /// <summary>The TCP address of the peer when known.</summary>
    public IPEndPoint? RemoteEndPoint { get; }

    /// <summary>Bytes written to the network, handshake included.</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);

    /// <summary>Bytes read from the network, handshake included.</summary>
    public long BytesReceived => _reader.BytesRead;

    /// <summary>Application messages sent.</summary>
    public long MessagesSent => Interlocked.Read(ref _messagesSent);

    /// <summary>Application messages received.</summary>
    public long MessagesReceived => Interlocked.Read(ref _messagesReceived);

    /// <summary>Why the connection ended, or null while it is usable.</summary>
    public string? ClosedReason => _closedReason;

    /// <summary>Sends one application message (at most <see cref="SecureChannelOptions.MaxMessageSize"/> bytes).</summary>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        if (message.Length > _maxMessageSize)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"message of {message.Length} bytes exceeds the {_maxMessageSize}-byte cap");
        }
        ThrowIfClosed();
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            ThrowIfClosed();
            _sendBuffer ??= ArrayPool<byte>.Shared.Rent(SendBufferSize);
            var total = 4 + message.Length;
            var done = 0;
            var used = 0;
            while (done < total)
            {
                // A large message sends its length alone first, so every data frame is sealed straight from the
                // caller's buffer (no copy); a small one shares a frame with its length.
                var chunk = done == 0 && total > MaxFramePlaintext ? 4 : Math.Min(MaxFramePlaintext, total - done);
                if (used + 2 + chunk + CipherState.TagLength > SendBufferSize)
                {
                    await WriteAsync(used, cancellationToken);
                    used = 0;
                }
                used += SealFrame(message.Span, done, chunk, used);
                done += chunk;
            }
            await WriteAsync(used, cancellationToken);
            Interlocked.Increment(ref _messagesSent);
        }
        catch (SecureMeshException e) when (_closedReason is null)
        {
            // E.g. the nonce limit: the connection cannot continue.
            throw Fail(e.Message, e);
        }
        catch (Exception e) when (e is not SecureMeshException)
        {
            throw Fail(e is OperationCanceledException ? "a send was cancelled part-way" : "the connection broke while sending", e);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Receives the next application message.</summary>
    public async ValueTask<byte[]> ReceiveAsync(CancellationToken cancellationToken)
    {
        await _receiveLock.WaitAsync(cancellationToken);
        try
        {
            ThrowIfClosed();
            var length = await ReadHeaderAsync(cancellationToken);
            var message = length == 0 ? [] : GC.AllocateUninitializedArray<byte>(length);
            await ReadPlainAsync(message, cancellationToken);
            _messageInProgress = false;
            Interlocked.Increment(ref _messagesReceived);
            return message;
        }
        catch (OperationCanceledException) when (!_messageInProgress)
        {
            // Cancelled while waiting for a message to begin: nothing was consumed, the connection stays usable.
            throw;
        }
        catch (Exception e) when (e is not SecureMeshException)
        {
            throw Fail(e is OperationCanceledException ? "a receive was cancelled part-way" : "the connection broke while receiving", e);
        }
        finally
        {
            _receiveLock.Release();
        }
    }

    /// <summary>Receives the next application message into a pooled buffer; dispose the result to return it.</summary>
    public async ValueTask<IMemoryOwner<byte>> ReceivePooledAsync(CancellationToken cancellationToken)
    {
        await _receiveLock.WaitAsync(cancellationToken);
        PooledMessage? message = null;
        try
        {
            ThrowIfClosed();
            var length = await ReadHeaderAsync(cancellationToken);
            message = new PooledMessage(length);
            await ReadPlainAsync(message.Memory, cancellationToken);
            _messageInProgress = false;
            Interlocked.Increment(ref _messagesReceived);
            return message;
        }
        catch (Exception e)
        {
            message?.Dispose();
            if (e is SecureMeshException || (e is OperationCanceledException && !_messageInProgress))
            {
                throw;
            }
            throw Fail(e is OperationCanceledException ? "a receive was cancelled part-way" : "the connection broke while receiving", e);
        }
        finally
        {
            _receiveLock.Release();
        }
    }

    /// <summary>Test seam: sends one Noise transport frame with arbitrary plaintext (e.g. a lying length prefix).</summary>
    internal async ValueTask SendRawFrameForTestAsync(ReadOnlyMemory<byte> plaintext, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            var buffer = _sendBuffer ??= ArrayPool<byte>.Shared.Rent(SendBufferSize);
            var n = _transport.Encrypt(plaintext.Span, buffer.AsSpan(2));
            BinaryPrimitives.WriteUInt16BigEndian(buffer, (ushort)n);
            await WriteAsync(n + 2, cancellationToken);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Test seam: the transport keys, to check nonce handling.</summary>
    internal TransportState TransportForTest => _transport;

    /// <summary>Copies plaintext bytes [offset, offset+count) of (length header ‖ message) into a frame at <paramref name="at"/> and encrypts it in place.</summary>
    private int SealFrame(ReadOnlySpan<byte> message, int offset, int count, int at)
    {
        var buffer = _sendBuffer!;
        int length;
        if (offset >= 4)
        {
            length = _transport.Encrypt(message.Slice(offset - 4, count), buffer.AsSpan(at + 2, count + CipherState.TagLength));
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(at), (ushort)length);
            return 2 + length;
        }
        var plain = buffer.AsSpan(at + 2, count);
        var filled = 0;
        if (offset < 4)
        {
            Span<byte> header = stackalloc byte[4];
            BinaryPrimitives.WriteInt32BigEndian(header, message.Length);
            var h = Math.Min(4 - offset, count);
            header.Slice(offset, h).CopyTo(plain);
            filled = h;
        }
        var messageOffset = Math.Max(0, offset - 4);
        message.Slice(messageOffset, count - filled).CopyTo(plain[filled..]);
        length = _transport.Encrypt(plain, buffer.AsSpan(at + 2, count + CipherState.TagLength));
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(at), (ushort)length);
        return 2 + length;
    }

    private async ValueTask WriteAsync(int count, CancellationToken cancellationToken)
    {
        if (count == 0)
        {
            return;
        }
        _sendHighWater = Math.Max(_sendHighWater, count);
        await _stream.WriteAsync(_sendBuffer.AsMemory(0, count), cancellationToken);
        Interlocked.Add(ref _bytesSent, count);
    }

    private async ValueTask<int> ReadHeaderAsync(CancellationToken cancellationToken)
    {
        if (_plain.IsEmpty && await NextFrameAsync(atMessageStart: true, default, cancellationToken) < 0)
        {
            // A close between messages is how a session ends normally: not a warning.
            throw Fail("the peer closed the connection", null, SecureMeshErrorKind.Network, normal: true);
        }
        _messageInProgress = true;
        await ReadPlainAsync(_header, cancellationToken);
        var length = BinaryPrimitives.ReadUInt32BigEndian(_header);
        if (length > (uint)_maxMessageSize)
        {
            throw Fail($"the peer announced a {length}-byte message, over the {_maxMessageSize}-byte cap");
        }
        return (int)length;
    }

    private async ValueTask ReadPlainAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        while (!destination.IsEmpty)
        {
            if (_plain.IsEmpty)
            {
                var written = await NextFrameAsync(atMessageStart: false, destination, cancellationToken);
                destination = destination[written..];
                continue;
            }
            var n = Math.Min(_plain.Length, destination.Length);
            _plain[..n].CopyTo(destination);
            _plain = _plain[n..];
            destination = destination[n..];
        }
    }

    /// <summary>
    /// Reads and decrypts the next frame: straight into <paramref name="destination"/> when the whole frame fits
    /// there (returns the bytes written), otherwise in place into the pending plaintext (returns 0).
    /// Returns -1 when the peer closed cleanly between messages.
    /// </summary>
    private async ValueTask<int> NextFrameAsync(bool atMessageStart, Memory<byte> destination, CancellationToken cancellationToken)
    {
        Memory<byte>? frame;
        try
        {
            frame = await _reader.ReadFrameAsync(cancellationToken);
        }
        catch (SecureMeshException e)
        {
            throw Fail(e.Message);
        }
        if (frame is not { } ciphertext)
        {
            if (atMessageStart)
            {
                return -1;
            }
            throw Fail("the peer closed the connection inside a message");
        }
        var direct = ciphertext.Length >= CipherState.TagLength && ciphertext.Length - CipherState.TagLength <= destination.Length;
        var target = direct ? destination.Span : ciphertext.Span;
        if (!_transport.TryDecrypt(ciphertext.Span, target, out var written))
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

    private void ThrowIfClosed()
    {
        if (_closedReason is { } reason)
        {
            throw new SecureMeshException(Volatile.Read(ref _disposed) != 0 ? SecureMeshErrorKind.InvalidInput : SecureMeshErrorKind.Network, "connection closed: " + reason);
        }
    }

    /// <summary>Ends the connection for good and returns the exception to throw.</summary>
    private SecureMeshException Fail(string reason, Exception? inner = null, SecureMeshErrorKind kind = SecureMeshErrorKind.Protocol, bool normal = false)
    {
        if (Interlocked.CompareExchange(ref _closedReason, reason, null) is null)
        {
            if (_logger is { } logger)
            {
                if (normal)
                {
                    ChannelLog.ConnectionEnded(logger, RemotePeerId.Text, reason);
                }
                else
                {
                    ChannelLog.ConnectionFailed(logger, RemotePeerId.Text, reason);
                }
            }
            _stream.Dispose();
        }
        else
        {
            reason = _closedReason ?? reason;
        }
        if (inner is OperationCanceledException or IOException or ObjectDisposedException)
        {
            kind = SecureMeshErrorKind.Network;
        }
        return new SecureMeshException(kind, "connection closed: " + reason, inner);
    }

    /// <summary>Closes the connection and wipes its keys.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Interlocked.CompareExchange(ref _closedReason, "closed locally", null);
        await _stream.DisposeAsync();
        // Pending sends and receives fail quickly once the stream is gone; wait for them before wiping.
        // A custom stream that ignores disposal could hold them forever: then leave the keys to the finalizers.
        if (!await _sendLock.WaitAsync(DisposeWait) || !await _receiveLock.WaitAsync(DisposeWait))
        {
            return;
        }
        _transport.Dispose();
        _reader.Dispose();
        var buffer = _sendBuffer;
        _sendBuffer = null;
        if (buffer is not null)
        {
            // Only ciphertext was ever in it, but keep the pool clean anyway.
            buffer.AsSpan(0, _sendHighWater).Clear();
            ArrayPool<byte>.Shared.Return(buffer);
        }
        _plain = default;
        // Later calls see the closed state and throw instead of waiting.
        _receiveLock.Release();
        _sendLock.Release();
    }

    /// <inheritdoc/>
    public override string ToString() => $"SecureConnection({RemotePeerId}, {RemoteEndPoint})";

    private sealed class PooledMessage(int length) : IMemoryOwner<byte>
    {
        private byte[]? _array = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));

        public Memory<byte> Memory => (_array ?? throw new ObjectDisposedException(nameof(PooledMessage))).AsMemory(0, length);

        public void Dispose()
        {
            var array = Interlocked.Exchange(ref _array, null);
            if (array is not null)
            {
                ArrayPool<byte>.Shared.Return(array);
            }
        }
    }
}

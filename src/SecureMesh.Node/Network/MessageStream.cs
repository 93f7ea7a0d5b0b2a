using System.Buffers;
using SecureMesh.Core;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Core.Wire;

namespace SecureMesh.Node.Network;

/// <summary>
/// Whole messages on a libp2p stream, each prefixed by its length as an unsigned varint (the libp2p convention for
/// protocols on streams). The length is checked against the cap before anything is allocated. One sender at a time (a
/// lock), one receiver at a time; a malformed length, a stream cut inside a message or a send cancelled part-way breaks
/// the stream for good (it is disposed, which resets it).
/// </summary>
public sealed class MessageStream : IAsyncDisposable
{
    /// <summary>The bytes of a message a <see cref="MessagePlacement"/> sees before it places the message (fewer when the message is shorter).</summary>
    public const int PeekLength = 24;

    private const int MaxHeaderLength = 5;

    private readonly Stream _stream;
    private readonly int _maxMessageSize;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly SemaphoreSlim _receiveLock = new(1, 1);
    private readonly byte[] _header = new byte[MaxHeaderLength];
    private readonly byte[] _one = new byte[1];
    private readonly byte[] _peek = new byte[PeekLength];
    private volatile string? _closedReason;
    private int _disposed;

    /// <summary>Messages on <paramref name="stream"/> (owned from now on) of at most <paramref name="maxMessageSize"/> bytes.</summary>
    public MessageStream(Stream stream, int maxMessageSize = WireLimits.DefaultMaxMessageSize)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessageSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxMessageSize, int.MaxValue - MaxHeaderLength);
        _stream = stream;
        _maxMessageSize = maxMessageSize;
    }

    /// <summary>The stream underneath.</summary>
    public Stream Stream => _stream;

    /// <summary>Why the stream ended, or null while it is usable.</summary>
    public string? ClosedReason => _closedReason;

    /// <summary>Sends one message.</summary>
    public async ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        if (message.Length > _maxMessageSize)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"message of {message.Length} bytes exceeds the {_maxMessageSize}-byte cap");
        }
        ThrowIfClosed();
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfClosed();
            // A small message goes out with its length in one write (one muxer frame); a large one is written from the
            // caller's buffer after its length, without a copy.
            var headerLength = Varint.Size((ulong)message.Length);
            if (message.Length <= 4096)
            {
                var buffer = ArrayPool<byte>.Shared.Rent(headerLength + message.Length);
                try
                {
                    Varint.Write(buffer, (ulong)message.Length);
                    message.Span.CopyTo(buffer.AsSpan(headerLength));
                    await _stream.WriteAsync(buffer.AsMemory(0, headerLength + message.Length), cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
            else
            {
                var header = new byte[MaxHeaderLength];
                Varint.Write(header, (ulong)message.Length);
                await _stream.WriteAsync(header.AsMemory(0, headerLength), cancellationToken).ConfigureAwait(false);
                await _stream.WriteAsync(message, cancellationToken).ConfigureAwait(false);
            }
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not SecureMeshException)
        {
            throw Fail(e is OperationCanceledException ? "a send was cancelled part-way" : "the stream broke while sending: " + e.Message, e);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Receives the next message into a pooled buffer (dispose it to return it); null when the peer closed the stream between messages.</summary>
    public ValueTask<IMemoryOwner<byte>?> ReceiveAsync(CancellationToken cancellationToken) => ReceiveAsync(null, cancellationToken);

    /// <summary>
    /// Receives the next message into the buffer <paramref name="place"/> chooses for it once its length and first
    /// bytes (<see cref="PeekLength"/>) are in, or into a pooled buffer when it chooses none; null when the peer closed
    /// the stream between messages. The rest of the message is read straight into the chosen buffer.
    /// </summary>
    public async ValueTask<IMemoryOwner<byte>?> ReceiveAsync(MessagePlacement? place, CancellationToken cancellationToken)
    {
        await _receiveLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        IMemoryOwner<byte>? message = null;
        var inProgress = false;
        try
        {
            ThrowIfClosed();
            // The first byte alone may be waited for and cancelled without harm: nothing has been consumed yet.
            var read = await _stream.ReadAsync(_one, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                _closedReason ??= "the peer closed the stream";
                return null;
            }
            inProgress = true;
            _header[0] = _one[0];
            var used = 1;
            ulong length;
            while (!Varint.TryRead(_header.AsSpan(0, used), out length, out _))
            {
                if (used == MaxHeaderLength)
                {
                    throw Fail("a message length longer than 5 bytes", null, SecureMeshErrorKind.Protocol);
                }
                if (await _stream.ReadAsync(_one, cancellationToken).ConfigureAwait(false) == 0)
                {
                    throw Fail("the peer closed the stream inside a message length", null, SecureMeshErrorKind.Protocol);
                }
                _header[used++] = _one[0];
            }
            if (length > (ulong)_maxMessageSize)
            {
                throw Fail($"the peer announced a {length}-byte message, over the {_maxMessageSize}-byte cap", null, SecureMeshErrorKind.Protocol);
            }
            var done = 0;
            if (place is not null && length > 0)
            {
                var head = (int)Math.Min(length, (ulong)PeekLength);
                while (done < head)
                {
                    var n = await _stream.ReadAsync(_peek.AsMemory(done, head - done), cancellationToken).ConfigureAwait(false);
                    if (n == 0)
                    {
                        throw Fail("the peer closed the stream inside a message", null, SecureMeshErrorKind.Protocol);
                    }
                    done += n;
                }
                message = place(_peek.AsSpan(0, head), (int)length);
                if (message is not null && message.Memory.Length != (int)length)
                {
                    // A bug of the caller's, not the peer's doing; the catch below disposes the buffer and ends the stream.
                    throw new InvalidOperationException("a message placement returned a buffer of another length");
                }
                message ??= new PooledMessage((int)length);
                _peek.AsSpan(0, head).CopyTo(message.Memory.Span);
            }
            message ??= new PooledMessage((int)length);
            var memory = message.Memory;
            while (done < memory.Length)
            {
                // On a yamux stream the reader is woken once much of the message is there, not for every frame.
                var n = _stream is YamuxStream yamux
                    ? await yamux.ReadAsync(memory[done..], memory.Length - done, cancellationToken).ConfigureAwait(false)
                    : await _stream.ReadAsync(memory[done..], cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    throw Fail("the peer closed the stream inside a message", null, SecureMeshErrorKind.Protocol);
                }
                done += n;
            }
            return message;
        }
        catch (OperationCanceledException) when (!inProgress)
        {
            throw;
        }
        catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.Protocol || _closedReason is not null)
        {
            message?.Dispose();
            throw;
        }
        catch (Exception e)
        {
            message?.Dispose();
            throw Fail(e is OperationCanceledException ? "a receive was cancelled part-way" : "the stream broke while receiving: " + e.Message, e);
        }
        finally
        {
            _receiveLock.Release();
        }
    }

    private void ThrowIfClosed()
    {
        if (_closedReason is { } reason)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Network, "stream closed: " + reason);
        }
    }

    /// <summary>Ends the stream for good (a reset for the peer) and returns the exception to throw.</summary>
    private SecureMeshException Fail(string reason, Exception? inner, SecureMeshErrorKind kind = SecureMeshErrorKind.Network)
    {
        if (Interlocked.CompareExchange(ref _closedReason, reason, null) is null)
        {
            _stream.Dispose();
        }
        return new SecureMeshException(kind, "stream closed: " + reason, inner);
    }

    /// <summary>Closes our side of the stream for writing (the peer reads the end); receiving goes on.</summary>
    public async ValueTask CompleteSendingAsync(CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_closedReason is null && _stream is YamuxStream yamux)
            {
                await yamux.CloseWriteAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Closes the stream.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Interlocked.CompareExchange(ref _closedReason, "closed locally", null);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Chooses the buffer for a message of <paramref name="length"/> bytes from its first bytes <paramref name="head"/>: one of exactly that length (the caller owns it once returned), or null for a pooled one.</summary>
    public delegate IMemoryOwner<byte>? MessagePlacement(ReadOnlySpan<byte> head, int length);

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

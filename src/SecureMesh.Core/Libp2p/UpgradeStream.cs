using System.Buffers;
using System.Net.Sockets;
using SecureMesh.Core.Channel;

namespace SecureMesh.Core.Libp2p;

/// <summary>
/// The connection as the <see cref="Upgrader"/> sees it until the Noise handshake is done: reads come from the
/// connection's <see cref="FrameReader"/> (one buffer for multistream-select and the handshake, so a multistream line
/// and the Noise message sent with it take one read), and writes can be held back to go out with the next one, so the
/// multistream lines and a Noise message leave in one segment: the dialer's header, proposal and first message; the
/// listener's header, answer and second message when the dialer's first message came with its proposal. Held bytes
/// always leave with the very next write; a write cancelled or failed closes the connection anyway.
/// </summary>
internal sealed class UpgradeStream : DuplexStream
{
    private readonly Stream _inner;
    private readonly FrameReader _reader;
    private byte[]? _held;
    private int _heldCount;

    public UpgradeStream(Stream inner, FrameReader reader)
    {
        _inner = inner;
        _reader = reader;
    }

    /// <summary>Holds every write (and flush) until this is cleared and the next write comes.</summary>
    public bool HoldWrites { get; set; }

    /// <summary>
    /// Holds a write while bytes of the peer are buffered and unread: the peer sent more without waiting for our answer
    /// (a dialer's first Noise message after its proposal), so the answer can wait for our next message.
    /// </summary>
    public bool HoldWhilePeerBytesBuffered { get; set; }

    /// <summary>Bytes written and not sent yet.</summary>
    public int HeldBytes => _heldCount;

    /// <summary>True when the peer's next bytes can be read without waiting.</summary>
    public bool PeerBytesWaiting => _reader.BufferedBytes > 0 || _inner is NetworkStream { DataAvailable: true };

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _reader.ReadRawAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count), CancellationToken.None).AsTask().GetAwaiter().GetResult();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (HoldWrites || (HoldWhilePeerBytesBuffered && _reader.BufferedBytes > 0))
        {
            Hold(buffer.Span);
            return;
        }
        if (_held is null)
        {
            await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            return;
        }
        // What was held leaves with this write, in one segment.
        Hold(buffer.Span);
        var held = _held;
        var count = _heldCount;
        _held = null;
        _heldCount = 0;
        try
        {
            await _inner.WriteAsync(held.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(held);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count), CancellationToken.None).AsTask().GetAwaiter().GetResult();

    public override Task FlushAsync(CancellationToken cancellationToken) =>
        _heldCount > 0 ? Task.CompletedTask : _inner.FlushAsync(cancellationToken);

    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

    private void Hold(ReadOnlySpan<byte> bytes)
    {
        var held = _held ??= ArrayPool<byte>.Shared.Rent(Math.Max(256, bytes.Length));
        if (held.Length - _heldCount < bytes.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(_heldCount + bytes.Length);
            held.AsSpan(0, _heldCount).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(held);
            _held = held = larger;
        }
        bytes.CopyTo(held.AsSpan(_heldCount));
        _heldCount += bytes.Length;
    }

    /// <summary>Closes the connection (the upgrade failed).</summary>
    public override async ValueTask DisposeAsync()
    {
        if (_held is { } held)
        {
            _held = null;
            _heldCount = 0;
            ArrayPool<byte>.Shared.Return(held);
        }
        await _inner.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        base.Dispose(disposing);
    }
}

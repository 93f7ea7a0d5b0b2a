namespace SecureMesh.Core.Channel;

/// <summary>
/// A connection-like stream: readable and writable, with no length, position or seeking. The base of the streams a
/// connection is read and written through (<see cref="NoiseStream"/>, a yamux stream, the upgrade's stream), so the
/// parts of <see cref="Stream"/> that make no sense for a connection are said once.
/// </summary>
public abstract class DuplexStream : Stream
{
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
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();
}

namespace SecureMesh.Core.Libp2p;

/// <summary>
/// A byte stream that can say, without waiting, whether bytes are there to read, and read them: a muxer uses it to
/// put a payload straight into a waiting reader's buffer, which it may only do while it need not wait for the network.
/// </summary>
internal interface IImmediateReadStream
{
    /// <summary>Reads into <paramref name="buffer"/> what is there now, as a read would; false (nothing read) when that needs waiting.</summary>
    bool TryReadImmediately(Span<byte> buffer, out int read);

    /// <summary>Completes once <see cref="TryReadImmediately"/> has something to read, or a read would fail or end.</summary>
    Task WaitReadableAsync(CancellationToken cancellationToken);
}

namespace SecureMesh.Core.Libp2p;

/// <summary>
/// A byte stream that can write two buffers as one write (one socket send) without first copying them together, so a
/// muxer can send a frame's header and a caller's payload as they are.
/// </summary>
internal interface IGatheringStream
{
    /// <summary>Writes <paramref name="first"/> then <paramref name="second"/>, as <see cref="Stream.WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/> would write them one after the other.</summary>
    ValueTask WriteAsync(ReadOnlyMemory<byte> first, ReadOnlyMemory<byte> second, CancellationToken cancellationToken);
}

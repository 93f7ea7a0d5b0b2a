namespace SecureMesh.Core.Libp2p;

/// <summary>
/// A duplex byte stream that can end its sending direction alone (TCP's FIN): the peer reads the end of the stream
/// after what was written, and this side can still read until the peer ends too. A muxer closing a connection uses it
/// so that both sides end on a clean end of stream, not on a cancelled or broken read.
/// </summary>
internal interface IHalfClosable
{
    /// <summary>Ends the sending direction after what was written; false when this stream cannot (then nothing changed).</summary>
    ValueTask<bool> CloseWriteAsync(CancellationToken cancellationToken);
}

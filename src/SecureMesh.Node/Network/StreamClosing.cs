using SecureMesh.Core;
using SecureMesh.Core.Libp2p.Yamux;

namespace SecureMesh.Node.Network;

/// <summary>Ends a stream the way libp2p peers expect: our half closed (FIN), then the peer's end awaited a while, then disposed.</summary>
internal static class StreamClosing
{
    /// <summary>Bytes of a peer's leftovers read and dropped while waiting for its end; more resets the stream.</summary>
    private const int MaxDrained = 64 * 1024;

    /// <summary>
    /// Closes <paramref name="stream"/>: FIN, then up to <paramref name="wait"/> for the peer's FIN (what it still sends is
    /// dropped), then dispose (which resets the stream if the peer has not finished). Never throws.
    /// </summary>
    public static async Task CloseAsync(Stream stream, TimeSpan wait, TimeProvider time)
    {
        try
        {
            if (stream is YamuxStream yamux && !yamux.IsReset)
            {
                await yamux.CloseWriteAsync(CancellationToken.None).ConfigureAwait(false);
                using var deadline = new CancellationTokenSource(wait, time);
                var buffer = new byte[1024];
                var drained = 0;
                while (drained <= MaxDrained)
                {
                    var n = await yamux.ReadAsync(buffer, deadline.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }
                    drained += n;
                }
            }
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The stream ended some other way; disposing below is all that is left.
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}

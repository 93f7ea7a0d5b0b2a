using System.Net;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Network;

/// <summary>
/// A libp2p connection dialled without a node (no authorization, no router): for tests, benchmarks and tools that
/// speak to a node directly. Messages sent and received go on the <see cref="TransferProtocol.Transfer"/> stream,
/// opened on first use.
/// </summary>
internal sealed class PeerLink : IAsyncDisposable
{
    private readonly SemaphoreSlim _open = new(1, 1);
    private MessageStream? _messages;

    private PeerLink(UpgradedConnection connection, YamuxSession muxer)
    {
        Connection = connection;
        Muxer = muxer;
    }

    public UpgradedConnection Connection { get; }

    public YamuxSession Muxer { get; }

    public PeerId RemotePeerId => Connection.RemotePeerId;

    public byte[] HandshakeHash => Connection.HandshakeHash;

    /// <summary>Dials <paramref name="remote"/> as <paramref name="me"/>, upgrades and starts yamux.</summary>
    public static async Task<PeerLink> DialAsync(NodeIdentity me, IPEndPoint remote, PeerId? expected, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var upgrader = new Upgrader(me, new UpgraderOptions { HandshakeTimeout = timeout });
        var connection = await TcpTransport.DialAsync(upgrader, remote, expected, timeout, TimeProvider.System, cancellationToken).ConfigureAwait(false);
        return new PeerLink(connection, new YamuxSession(connection.Stream, isClient: true));
    }

    /// <summary>Upgrades an already connected <paramref name="stream"/> (e.g. a socket bound to a chosen local address) and starts yamux.</summary>
    public static async Task<PeerLink> UpgradeAsync(NodeIdentity me, Stream stream, PeerId? expected, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var upgrader = new Upgrader(me, new UpgraderOptions { HandshakeTimeout = timeout });
        var connection = await upgrader.UpgradeOutboundAsync(stream, expected, cancellationToken).ConfigureAwait(false);
        return new PeerLink(connection, new YamuxSession(connection.Stream, isClient: true));
    }

    /// <summary>Opens a stream and negotiates <paramref name="protocol"/> on it.</summary>
    public async Task<YamuxStream> OpenStreamAsync(string protocol, CancellationToken cancellationToken)
    {
        var stream = await Muxer.OpenStreamAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await MultistreamSelect.SelectAsync(stream, [protocol], cancellationToken).ConfigureAwait(false);
            return stream;
        }
        catch
        {
            stream.Reset();
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Waits for a stream the node opens and negotiates one of <paramref name="protocols"/> on it, as a listener.</summary>
    public async Task<(string Protocol, YamuxStream Stream)> AcceptStreamAsync(IReadOnlyCollection<string> protocols, CancellationToken cancellationToken)
    {
        var stream = await Muxer.AcceptStreamAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return (await MultistreamSelect.NegotiateAsync(stream, protocols, cancellationToken).ConfigureAwait(false), stream);
        }
        catch
        {
            stream.Reset();
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The transfer stream, opened on first use.</summary>
    public async Task<MessageStream> MessagesAsync(CancellationToken cancellationToken)
    {
        if (_messages is { } ready)
        {
            return ready;
        }
        await _open.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return _messages ??= new MessageStream(await OpenStreamAsync(TransferProtocol.Transfer, cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            _open.Release();
        }
    }

    /// <summary>Sends one message on the transfer stream.</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken) =>
        await (await MessagesAsync(cancellationToken).ConfigureAwait(false)).SendAsync(message, cancellationToken).ConfigureAwait(false);

    /// <summary>Writes raw bytes on the transfer stream (e.g. a lying length prefix).</summary>
    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        var stream = (await MessagesAsync(cancellationToken).ConfigureAwait(false)).Stream;
        await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The next message on the transfer stream; <see cref="SecureMeshException"/> when the node closed it.</summary>
    public async Task<byte[]> ReceiveAsync(CancellationToken cancellationToken)
    {
        var messages = await MessagesAsync(cancellationToken).ConfigureAwait(false);
        using var message = await messages.ReceiveAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new SecureMeshException(SecureMeshErrorKind.Network, "the node closed the stream");
        return message.Memory.ToArray();
    }

    /// <summary>True when the node closes the connection within <paramref name="timeout"/>.</summary>
    public async Task<bool> ClosedByRemoteAsync(TimeSpan timeout)
    {
        var done = await Task.WhenAny(Muxer.Completion, Task.Delay(timeout)).ConfigureAwait(false);
        return done == Muxer.Completion;
    }

    public async ValueTask DisposeAsync()
    {
        if (_messages is { } messages)
        {
            await messages.DisposeAsync().ConfigureAwait(false);
        }
        await Muxer.DisposeAsync().ConfigureAwait(false);
        await Connection.DisposeAsync().ConfigureAwait(false);
        _open.Dispose();
    }
}

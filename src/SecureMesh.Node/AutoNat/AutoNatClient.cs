using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.AutoNat;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.AutoNat;

/// <summary>
/// The AutoNAT v2 client: asks a trusted peer to dial one of our addresses back. An address counts as reachable only
/// when the dial back really arrived here with our nonce (the server's word alone proves nothing); the dial-back
/// connection is taken before authorization (<see cref="ISideConnections"/>), serves only the dial-back protocol, and
/// is closed after it, so it never replaces the session with the same peer.
/// </summary>
internal sealed class AutoNatClient : ISideConnections
{
    private readonly AutoNatOptions _options;
    private readonly ILogger _logger;
    // Nonce -> the server asked and whether the dial back has arrived.
    private readonly ConcurrentDictionary<ulong, PendingDialBack> _pending = new();
    private int _sideConnections;

    private sealed class PendingDialBack(PeerId server)
    {
        public PeerId Server { get; } = server;

        public volatile bool Arrived;
    }

    public AutoNatClient(AutoNatOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
    }

    /// <summary>Most dial-back connections served at once (each lasts a few seconds at most).</summary>
    private const int MaxSideConnections = 8;

    /// <summary>Asks <paramref name="server"/> about <paramref name="address"/>: reachable, unreachable, or null when the answer says nothing.</summary>
    public async Task<Reachability?> CheckAsync(PeerSession server, IPEndPoint address, CancellationToken cancellationToken)
    {
        var nonce = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
        var pending = new PendingDialBack(server.PeerId);
        _pending[nonce] = pending;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.DialTimeout * 3);
        var ct = timeout.Token;
        Stream? stream = null;
        try
        {
            stream = await server.OpenStreamAsync(AutoNatMessages.DialRequestProtocol, ct).ConfigureAwait(false);
            await AutoNatMessages.WriteAsync(stream, new DialRequest([Multiaddr.FromEndPoint(address).ToBytes()], nonce), ct).ConfigureAwait(false);
            while (true)
            {
                var message = await AutoNatMessages.ReadAsync(stream, ct).ConfigureAwait(false);
                switch (message)
                {
                    case DialDataRequest { AddrIdx: 0 } data when data.NumBytes <= _options.MaxDialDataToPay:
                        await PayAsync(stream, data.NumBytes, ct).ConfigureAwait(false);
                        continue;
                    case DialDataRequest data:
                        throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"asks {data.NumBytes} bytes of dial data for address {data.AddrIdx}: too much");
                    case DialResponse response:
                        return Judge(server, address, response, pending);
                    case null:
                        throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the stream ended without a DialResponse");
                    default:
                        throw new SecureMeshException(SecureMeshErrorKind.Protocol, "an unexpected message");
                }
            }
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            (stream as YamuxStream)?.Reset();
            AutoNatLog.AskFailed(_logger, server.PeerId.Text, address.ToString(), e.Message);
            return null;
        }
        finally
        {
            _pending.TryRemove(nonce, out _);
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private Reachability? Judge(PeerSession server, IPEndPoint address, DialResponse response, PendingDialBack pending)
    {
        if (response.Status != ResponseStatus.Ok || response.AddrIdx != 0)
        {
            return null;
        }
        switch (response.DialStatus)
        {
            case DialStatus.Ok when pending.Arrived:
                return Reachability.Reachable;
            case DialStatus.Ok:
                // The spec: a DialResponse whose nonce never arrived is discarded.
                AutoNatLog.Unproven(_logger, server.PeerId.Text, address.ToString());
                return null;
            case DialStatus.DialError:
                return Reachability.Unreachable;
            default:
                return null;
        }
    }

    private static async Task PayAsync(Stream stream, ulong amount, CancellationToken ct)
    {
        for (ulong sent = 0; sent < amount; sent += AutoNatMessages.MaxDataChunk)
        {
            await AutoNatMessages.WriteAsync(stream, new DialDataResponse(AutoNatMessages.MaxDataChunk), ct).ConfigureAwait(false);
        }
    }

    /// <summary>An inbound connection from a server this node is waiting on: serve its one dial-back stream.</summary>
    public bool TryTake(MeshNode node, UpgradedConnection connection, IPEndPoint? remote)
    {
        var peer = connection.RemotePeerId;
        if (_pending.IsEmpty || !_pending.Values.Any(p => p.Server.Equals(peer)))
        {
            return false;
        }
        if (Interlocked.Increment(ref _sideConnections) > MaxSideConnections)
        {
            Interlocked.Decrement(ref _sideConnections);
            return false;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                await ServeDialBackAsync(node, connection, peer).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _sideConnections);
            }
        });
        return true;
    }

    private async Task ServeDialBackAsync(MeshNode node, UpgradedConnection connection, PeerId peer)
    {
        using var timeout = new CancellationTokenSource(_options.DialTimeout, _options.Time);
        await using (connection.ConfigureAwait(false))
        {
            var muxer = node.OpenMuxer(connection);
            await using (muxer.ConfigureAwait(false))
            {
                // A libp2p node opens its own streams on any new connection (js-libp2p identifies first): each is
                // answered "na" while the dial-back stream is awaited, a few at most.
                var streams = new List<Task<bool>>();
                Task<YamuxStream>? accept = null;
                try
                {
                    accept = muxer.AcceptStreamAsync(timeout.Token).AsTask();
                    while (true)
                    {
                        var finished = await Task.WhenAny([accept, .. streams]).ConfigureAwait(false);
                        if (finished == accept)
                        {
                            var stream = await accept.ConfigureAwait(false);
                            if (streams.Count >= MaxStreamsPerDialBack)
                            {
                                stream.Reset();
                                break;
                            }
                            streams.Add(ServeDialBackStreamAsync(node, stream, peer, timeout.Token));
                            accept = muxer.AcceptStreamAsync(timeout.Token).AsTask();
                        }
                        else if (await ((Task<bool>)finished).ConfigureAwait(false))
                        {
                            break;
                        }
                        else
                        {
                            streams.Remove((Task<bool>)finished);
                        }
                    }
                }
                catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException)
                {
                    AutoNatLog.DialBackFailed(_logger, peer.Text, e.Message);
                }
                finally
                {
                    // Observed, so its end (the muxer's disposal) is no unobserved exception.
                    _ = accept?.ContinueWith(t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                }
            }
        }
    }

    private const int MaxStreamsPerDialBack = 4;

    /// <summary>True when this stream was the dial back (with a nonce of ours, answered OK); other protocols get "na".</summary>
    private async Task<bool> ServeDialBackStreamAsync(MeshNode node, YamuxStream stream, PeerId peer, CancellationToken cancellationToken)
    {
        await using (stream.ConfigureAwait(false))
        {
            try
            {
                await MultistreamSelect.NegotiateAsync(stream, id => id == AutoNatMessages.DialBackProtocol, [AutoNatMessages.DialBackProtocol],
                    node.Negotiation, cancellationToken).ConfigureAwait(false);
                var nonce = await AutoNatMessages.ReadDialBackAsync(stream, cancellationToken).ConfigureAwait(false);
                if (nonce is not { } n || !_pending.TryGetValue(n, out var pending) || !pending.Server.Equals(peer))
                {
                    AutoNatLog.ProtocolError(_logger, peer.Text, "a dial back with a nonce this node did not send");
                    stream.Reset();
                    return false;
                }
                pending.Arrived = true;
                await AutoNatMessages.WriteDialBackResponseAsync(stream, cancellationToken).ConfigureAwait(false);
                await stream.CloseWriteAsync(cancellationToken).ConfigureAwait(false);
                // Wait for the server to hang up, so our answer is not cut off by our own close.
                var drain = new byte[16];
                while (await stream.ReadAsync(drain, cancellationToken).ConfigureAwait(false) > 0)
                {
                }
                return true;
            }
            catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException)
            {
                return false;
            }
        }
    }
}

using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Libp2p.Multistream;

namespace SecureMesh.Node.Network;

/// <summary>A protocol served on the streams a peer opens.</summary>
/// <param name="Id">The protocol ID negotiated with multistream-select, e.g. <c>/ipfs/ping/1.0.0</c>.</param>
/// <param name="Handler">Serves one stream; the router disposes the stream when it returns.</param>
/// <param name="MaxInboundPerConnection">Streams of this protocol one connection may have open at once; more are reset.</param>
public sealed record StreamProtocol(string Id, Func<PeerSession, Stream, CancellationToken, Task> Handler, int MaxInboundPerConnection = 8);

/// <summary>
/// Decides which of the registered protocols a peer may use on a connection the node kept. Today only trusted peers keep
/// a connection, and they may use every protocol; the next steps (a relay service for trusted peers only) plug in here.
/// </summary>
public interface IProtocolPolicy
{
    /// <summary>True when <paramref name="session"/>'s peer may open a stream of <paramref name="protocol"/>.</summary>
    bool Allows(PeerSession session, string protocol);
}

/// <summary>The default policy: a session exists only for a trusted peer, which may use every registered protocol.</summary>
public sealed class TrustedPeersPolicy : IProtocolPolicy
{
    /// <summary>The one instance.</summary>
    public static TrustedPeersPolicy Instance { get; } = new();

    /// <inheritdoc/>
    public bool Allows(PeerSession session, string protocol) => true;
}

/// <summary>
/// Routes the streams a peer opens: multistream-select among the protocols the policy lets this peer use (any other
/// proposal is answered <c>na</c>, exactly like a protocol we do not speak), a cap per protocol and connection, then the
/// protocol's handler. Nothing a peer does on a stream raises anything but a reset stream.
/// </summary>
public sealed class ProtocolRouter
{
    private readonly ConcurrentDictionary<string, StreamProtocol> _protocols = new(StringComparer.Ordinal);
    private readonly IProtocolPolicy _policy;
    private readonly MultistreamOptions _negotiation;
    private readonly ILogger _logger;

    /// <summary>A router serving <paramref name="protocols"/> under <paramref name="policy"/>.</summary>
    public ProtocolRouter(IEnumerable<StreamProtocol> protocols, IProtocolPolicy? policy, TimeSpan negotiationTimeout, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(protocols);
        foreach (var protocol in protocols)
        {
            if (!_protocols.TryAdd(protocol.Id, protocol))
            {
                throw new ArgumentException($"protocol {protocol.Id} registered twice", nameof(protocols));
            }
        }
        _policy = policy ?? TrustedPeersPolicy.Instance;
        _negotiation = new MultistreamOptions { Timeout = negotiationTimeout, TimeProvider = time };
        _logger = logger;
    }

    /// <summary>Serves <paramref name="protocol"/> from now on; false when a protocol with its ID is served already.</summary>
    public bool TryAdd(StreamProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        return _protocols.TryAdd(protocol.Id, protocol);
    }

    /// <summary>The protocols served, in a stable order (what identify announces).</summary>
    public IReadOnlyList<string> Protocols => [.. _protocols.Keys.Order(StringComparer.Ordinal)];

    /// <summary>The protocols <paramref name="session"/>'s peer may use.</summary>
    public IReadOnlyList<string> ProtocolsFor(PeerSession session) => [.. Protocols.Where(p => _policy.Allows(session, p))];

    /// <summary>Serves one inbound stream to its end; disposes it.</summary>
    public async Task ServeAsync(PeerSession session, Stream stream, CancellationToken cancellationToken)
    {
        string? entered = null;
        try
        {
            string chosen;
            try
            {
                chosen = await MultistreamSelect.NegotiateAsync(stream,
                    id => _protocols.ContainsKey(id) && _policy.Allows(session, id),
                    ProtocolsFor(session), _negotiation, cancellationToken).ConfigureAwait(false);
            }
            catch (SecureMeshException e)
            {
                NetworkLog.NegotiationFailed(_logger, session.PeerId.Text, e.Message);
                return;
            }
            var protocol = _protocols[chosen];
            if (!session.TryEnterInbound(chosen, protocol.MaxInboundPerConnection))
            {
                NetworkLog.StreamRefused(_logger, session.PeerId.Text, chosen, $"more than {protocol.MaxInboundPerConnection} streams of it at once");
                return;
            }
            entered = chosen;
            await protocol.Handler(session, stream, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException or TimeoutException)
        {
            // The stream broke or the session is closing: the handler's peer sees a reset, the node carries on.
        }
        catch (Exception e) when (e is InvalidOperationException or UnauthorizedAccessException)
        {
            NetworkLog.HandlerFailed(_logger, session.PeerId.Text, entered ?? "?", e.Message);
        }
        finally
        {
            if (entered is not null)
            {
                session.ExitInbound(entered);
            }
            await StreamClosing.CloseAsync(stream, _negotiation.Timeout, _negotiation.TimeProvider).ConfigureAwait(false);
        }
    }
}

using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Libp2p.Identify;
using SecureMesh.Node.Network;

namespace SecureMesh.Node;

/// <summary>
/// Identify push (<c>/ipfs/id/push/1.0.0</c>, libp2p identify spec): when what identify announces changes (our listen
/// addresses, the protocols we serve), every connected peer is told without asking; a peer's push updates what we know
/// of it, under the same caps and key check as an identify answer.
/// </summary>
public sealed partial class MeshNode
{
    private readonly SemaphoreSlim _pushing = new(1, 1);
    private readonly Lock _announceGate = new();
    private string? _announced;
    private long _addressesCheckedAt;
    private volatile bool _protocolsChanged;

    /// <summary>How often the interfaces' addresses are looked at again (they change under a node bound to 0.0.0.0).</summary>
    internal TimeSpan AddressCheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Test seam: the endpoints announced instead of the listen endpoint expanded to the interfaces' addresses.</summary>
    internal Func<IReadOnlyList<IPEndPoint>>? ListenEndPointsOverride { get; set; }

    /// <summary>The endpoints identify announces: the listen endpoint, the unspecified address expanded to the interfaces' addresses.</summary>
    private IReadOnlyList<IPEndPoint> ListenEndPoints() => ListenEndPointsOverride?.Invoke()
        ?? [.. ListenAddresses.Expand(LocalEndPoint).Concat(Reach.Advertised.Select(a => a.EndPoint)).Distinct()];

    /// <summary>
    /// Serves <paramref name="protocol"/> from now on on every connection, and tells the connected peers (identify push,
    /// within a poll interval). Throws <see cref="ArgumentException"/> when a protocol with its ID is served already.
    /// </summary>
    public void AddProtocol(StreamProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        lock (_announceGate)
        {
            // What peers were told before this one: so that even a protocol added before the first look is pushed.
            _announced ??= Announcement();
            if (!_router.TryAdd(protocol))
            {
                throw new ArgumentException($"protocol {protocol.Id} is served already", nameof(protocol));
            }
            _protocolsChanged = true;
        }
    }

    private string Announcement() => string.Join(' ', ListenEndPoints()) + " | " + string.Join(' ', _router.Protocols);

    /// <summary>
    /// Called on every poll tick: pushes our identify to the peers when the protocols changed, or when the addresses
    /// (looked at every <see cref="AddressCheckInterval"/>) did. The first look only records what is announced.
    /// </summary>
    private void AnnounceIfChanged()
    {
        lock (_announceGate)
        {
            var now = _options.Time.GetTimestamp();
            var addressesDue = _addressesCheckedAt == 0 || _options.Time.GetElapsedTime(_addressesCheckedAt, now) >= AddressCheckInterval;
            if (!addressesDue && !_protocolsChanged)
            {
                return;
            }
            _addressesCheckedAt = now;
            _protocolsChanged = false;
            var announced = Announcement();
            if (_announced is null || _announced == announced)
            {
                _announced = announced;
                return;
            }
            _announced = announced;
        }
        IdentifyPushing(_logger, _sessions.Count);
        _ = PushIdentifyAsync(_stopping.Token);
    }

    /// <summary>
    /// Pushes our identify message (as <c>/ipfs/id/1.0.0</c> would answer it, for that peer) to every session whose peer
    /// serves identify push or has not identified itself yet, all at once; one peer's failure only skips that peer.
    /// Pushes do not overlap: a second waits for the first and sends what is current then.
    /// </summary>
    public async Task PushIdentifyAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _pushing.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        try
        {
            var targets = _sessions.Values.Where(s => s.Identified is not { } known || known.Protocols.Contains(IdentifyService.PushProtocolId));
            await Task.WhenAll(targets.Select(session => PushToAsync(session, cancellationToken))).ConfigureAwait(false);
        }
        finally
        {
            _pushing.Release();
        }
    }

    private async Task PushToAsync(PeerSession session, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await session.OpenStreamAsync(IdentifyService.PushProtocolId, cancellationToken).ConfigureAwait(false);
            await _identify.PushAsync(stream, DescribeFor(session), cancellationToken).ConfigureAwait(false);
            await StreamClosing.CloseAsync(stream, _options.StreamTimeout, _options.Time).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            NetworkLog.IdentifyFailed(_logger, session.PeerId.Text, e.Message);
        }
    }

    /// <summary>
    /// A peer's push: read under the same caps as an identify answer (size, counts, a public key that must be its own);
    /// the fields it carries replace what we knew, those it leaves out stay.
    /// </summary>
    private async Task ReceiveIdentifyPushAsync(PeerSession session, Stream stream, CancellationToken cancellationToken)
    {
        var update = await _identify.ReceivePushAsync(stream, session.PeerId, cancellationToken).ConfigureAwait(false);
        session.Identified = session.Identified is { } known
            ? known with
            {
                ProtocolVersion = update.ProtocolVersion ?? known.ProtocolVersion,
                AgentVersion = update.AgentVersion ?? known.AgentVersion,
                ListenAddrs = update.ListenAddrs.Count > 0 ? update.ListenAddrs : known.ListenAddrs,
                Protocols = update.Protocols.Count > 0 ? update.Protocols : known.Protocols,
                ObservedAddr = update.ObservedAddr ?? known.ObservedAddr,
            }
            : update;
        IdentifyPushReceived(_logger, session.PeerId.Text, update.ListenAddrs.Count, update.Protocols.Count);
        PeerIdentified?.Invoke(session);
    }

    [LoggerMessage(EventId = 149, Level = LogLevel.Debug, Message = "our addresses or protocols changed: pushing identify to {Sessions} sessions")]
    private static partial void IdentifyPushing(ILogger logger, int sessions);

    [LoggerMessage(EventId = 150, Level = LogLevel.Debug, Message = "{PeerId} pushed identify: {Addresses} addresses, {Protocols} protocols")]
    private static partial void IdentifyPushReceived(ILogger logger, string peerId, int addresses, int protocols);
}

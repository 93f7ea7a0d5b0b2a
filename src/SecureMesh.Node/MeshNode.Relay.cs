using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Network;
using SecureMesh.Node.Relay;

namespace SecureMesh.Node;

/// <summary>Relayed connections (circuit relay v2): dialling through a relay and taking circuits a relay brings.</summary>
public sealed partial class MeshNode
{
    /// <summary>The relay reservations this node holds now.</summary>
    public IReadOnlyList<RelayReservationInfo> RelayReservations => _relayClient.Reservations;

    /// <summary>Circuits this node relays for others now.</summary>
    public int RelayedCircuits => _relayService.Circuits;

    /// <summary>True when <paramref name="peer"/> holds a reservation on this node's relay service.</summary>
    public bool HoldsReservationHere(PeerId peer) => _relayService.HasReservation(peer);

    /// <summary>The relayed addresses to try for <paramref name="peer"/>: through every connected relay that may reach it.</summary>
    public IReadOnlyList<string> CircuitAddressesFor(PeerId peer) => _relayClient.CircuitsTo(peer);

    /// <summary>Test seam: the relay service (to make it lie about targets).</summary>
    internal RelayService RelayServiceForTest => _relayService;

    /// <summary>Test seam: the relay client (to reserve and open circuits by hand).</summary>
    internal RelayClient RelayClientForTest => _relayClient;

    /// <summary>Reserves, renews and drops reservations now (tests; the node does it every few seconds).</summary>
    internal Task RelayTickAsync(CancellationToken cancellationToken) => _relayClient.TickAsync(cancellationToken);

    /// <summary>
    /// Dials <paramref name="expected"/> through a relay: the relay's session (dialled first at the address's relay part
    /// when not connected), a hop CONNECT, then the ordinary outbound upgrade over the circuit, insisting on
    /// <paramref name="expected"/> (a relay that connects us to anyone else fails the Noise handshake).
    /// </summary>
    private async Task<PeerSession> ConnectThroughRelayAsync(PeerId expected, CircuitAddress circuit, CancellationToken cancellationToken)
    {
        if (circuit.Target is { } named && !named.Equals(expected))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"relayed address names peer {named}, not {expected}");
        }
        if (circuit.Relay.Equals(expected) || circuit.Relay.Equals(PeerId))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "a relayed address must go through a third peer");
        }
        if (_sessions.TryGetValue(expected, out var existing))
        {
            return existing;
        }
        var decision = _db.Trust.Authorize(expected, System.Net.IPAddress.None);
        if (decision != Storage.AuthorizationDecision.Trusted)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"{expected} is not trusted ({Describe(decision)}); trust it first");
        }
        var relay = GetSession(circuit.Relay);
        if (relay is null || relay.Path == ConnectionPath.Relayed)
        {
            relay = circuit.RelayAddress is { } address
                ? await ConnectAsync(circuit.Relay, address, cancellationToken).ConfigureAwait(false)
                : throw new SecureMeshException(SecureMeshErrorKind.Network, $"not connected to relay {circuit.Relay}, and the address gives no way to reach it");
        }
        var stream = await _relayClient.OpenCircuitAsync(relay, expected, cancellationToken).ConfigureAwait(false);
        // The upgrader owns the stream from here: a failure closes it.
        var connection = await _upgrader.UpgradeOutboundAsync(stream, expected, cancellationToken, $"{expected} via {circuit.Relay}").ConfigureAwait(false);
        var session = TryOpenSession(connection, ConnectionDirection.Outbound, null, out _, ConnectionPath.Relayed, circuit.Relay);
        if (session is null)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            return _sessions.TryGetValue(expected, out existing)
                ? existing
                : throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"{expected} is not trusted");
        }
        return session;
    }

    /// <summary>
    /// Takes a circuit a relay brought (stop): the ordinary inbound upgrade over it, then authorization as for any
    /// connection. The peer Noise authenticates must be the one the relay named. Null when the peer is not admitted.
    /// </summary>
    internal async Task<PeerSession?> AcceptCircuitAsync(Stream stream, PeerId relay, PeerId claimed, CancellationToken cancellationToken)
    {
        var connection = await _upgrader.UpgradeInboundAsync(stream, cancellationToken, $"{claimed} via {relay}").ConfigureAwait(false);
        if (!connection.RemotePeerId.Equals(claimed))
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"relay {relay} announced {claimed} but the handshake authenticated {connection.RemotePeerId}");
        }
        var session = TryOpenSession(connection, ConnectionDirection.Inbound, null, out _, ConnectionPath.Relayed, relay);
        if (session is null)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        return session;
    }

    /// <summary>Keeps a direct connection made by hole punching with <paramref name="expected"/>; null when it is not kept.</summary>
    internal PeerSession? AdoptHolePunched(Core.Libp2p.UpgradedConnection connection, PeerId expected, ConnectionDirection direction, System.Net.IPEndPoint remote)
    {
        if (!connection.RemotePeerId.Equals(expected))
        {
            _ = connection.DisposeAsync().AsTask();
            throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"the hole-punched connection authenticated {connection.RemotePeerId}, not {expected}");
        }
        var session = TryOpenSession(connection, direction, remote, out _, ConnectionPath.HolePunched);
        if (session is null)
        {
            _ = connection.DisposeAsync().AsTask();
        }
        return session;
    }
}

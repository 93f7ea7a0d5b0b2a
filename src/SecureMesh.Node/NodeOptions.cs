using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Node.Network;

namespace SecureMesh.Node;

/// <summary>How a <see cref="MeshNode"/> runs.</summary>
public sealed class NodeOptions
{
    /// <summary>The data directory.</summary>
    public required string Home { get; init; }

    /// <summary>Where to listen; port 0 picks a free port.</summary>
    public IPEndPoint Listen { get; init; } = new(IPAddress.Any, 4747);

    /// <summary>The clock, injected so tests of penalties and timeouts need not sleep.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Where the node logs.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>How long a peer has to finish the handshake.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the node looks for trust changes made by other processes (the CLI).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Most authenticated sessions at once.</summary>
    public int MaxSessions { get; init; } = 256;

    /// <summary>Most handshakes in progress at once.</summary>
    public int MaxPendingHandshakes { get; init; } = 256;

    /// <summary>Most handshakes in progress from one address.</summary>
    public int MaxPendingPerAddress { get; init; } = 16;

    /// <summary>
    /// Largest application message accepted from or sent to a peer: the protocol's cap (the one announced in Hello),
    /// so a chunk of the largest valid size (16 MiB) with its header and proof fits. The <c>chunk-size</c> setting is
    /// checked against this (<see cref="NodeSettings"/>).
    /// </summary>
    public int MaxMessageSize { get; init; } = Core.Wire.WireLimits.DefaultMaxMessageSize;

    /// <summary>
    /// Inbound handshakes one address may have cost without giving a session (failed, stranger, blocked peer) before
    /// the refill rate applies; see <see cref="AttemptLimiter"/>.
    /// </summary>
    public int HandshakeBurst { get; init; } = 20;

    /// <summary>Time for one such handshake to be allowed again: after the burst, an address gets this rate (2 a second).</summary>
    public TimeSpan HandshakeRefill { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long one stream may take to negotiate its protocol, and identify to answer.</summary>
    public TimeSpan StreamTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The stream multiplexer's limits (streams per connection, windows, keep-alive).</summary>
    public YamuxOptions? Yamux { get; init; }

    /// <summary>
    /// What to do with a trusted peer's session once it is established; it runs on the session stream
    /// (<see cref="SessionProtocol"/>, one per connection, opened by the dialler), found in <see cref="PeerSession.Messages"/>.
    /// Null serves no session stream (the connection still serves identify, ping and <see cref="Protocols"/>).
    /// When the handler returns, the connection is closed.
    /// </summary>
    public Func<PeerSession, CancellationToken, Task>? SessionHandler { get; init; }

    /// <summary>The protocol ID of the session stream.</summary>
    public string SessionProtocol { get; init; } = Transfer.TransferProtocol.Transfer;

    /// <summary>Further protocols served on the streams a peer opens (identify and ping are always served).</summary>
    public IReadOnlyList<StreamProtocol> Protocols { get; init; } = [];

    /// <summary>Which protocols a peer may use; null: every protocol for the trusted peers that keep a connection.</summary>
    public IProtocolPolicy? Policy { get; init; }

    /// <summary>Takes inbound connections that are no session (AutoNAT dial-backs this node asked for) before authorization.</summary>
    internal ISideConnections? SideConnections { get; init; }

    /// <summary>Circuit relay limits and timing (the <c>relay-*</c> settings override the limits).</summary>
    public Relay.RelayOptions Relay { get; init; } = new();
}

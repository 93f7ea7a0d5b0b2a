using Microsoft.Extensions.Logging;

namespace SecureMesh.Node.Relay;

internal static partial class RelayLog
{
    [LoggerMessage(EventId = 1701, Level = LogLevel.Information, Message = "relay: reservation for {PeerId} served, until {Expire}")]
    public static partial void ReservationServed(ILogger logger, string peerId, DateTimeOffset expire);

    [LoggerMessage(EventId = 1702, Level = LogLevel.Information, Message = "relay: refused {Request} from {PeerId}: {Reason}")]
    public static partial void Refused(ILogger logger, string request, string peerId, string reason);

    [LoggerMessage(EventId = 1703, Level = LogLevel.Information, Message = "relay: circuit {Source} -> {Target} opened")]
    public static partial void CircuitOpened(ILogger logger, string source, string target);

    [LoggerMessage(EventId = 1704, Level = LogLevel.Information, Message = "relay: circuit {Source} -> {Target} closed after {Up} + {Down} bytes: {Reason}")]
    public static partial void CircuitClosed(ILogger logger, string source, string target, long up, long down, string reason);

    [LoggerMessage(EventId = 1710, Level = LogLevel.Information, Message = "reserved a relay slot on {Relay} until {Expire}; reachable at {Address}")]
    public static partial void Reserved(ILogger logger, string relay, DateTimeOffset expire, string address);

    [LoggerMessage(EventId = 1711, Level = LogLevel.Warning, Message = "reservation on relay {Relay} failed: {Reason}")]
    public static partial void ReservationFailed(ILogger logger, string relay, string reason);

    [LoggerMessage(EventId = 1712, Level = LogLevel.Warning, Message = "relay {Relay} from the relays setting cannot be used: {Reason}")]
    public static partial void RelayUnusable(ILogger logger, string relay, string reason);

    [LoggerMessage(EventId = 1713, Level = LogLevel.Information, Message = "relayed connection from {PeerId} through {Relay} refused: {Reason}")]
    public static partial void InboundCircuitRefused(ILogger logger, string peerId, string relay, string reason);

    [LoggerMessage(EventId = 1750, Level = LogLevel.Information, Message = "hole punch with {PeerId}: attempt {Attempt} of {Max} (rtt {Rtt} ms) to {Addresses}")]
    public static partial void HolePunchAttempt(ILogger logger, string peerId, int attempt, int max, long rtt, string addresses);

    [LoggerMessage(EventId = 1751, Level = LogLevel.Information, Message = "hole punch with {PeerId} succeeded: direct connection {Remote}")]
    public static partial void HolePunchSucceeded(ILogger logger, string peerId, string remote);

    [LoggerMessage(EventId = 1752, Level = LogLevel.Information, Message = "hole punch with {PeerId} failed, the relayed connection stays: {Reason}")]
    public static partial void HolePunchFailed(ILogger logger, string peerId, string reason);
}

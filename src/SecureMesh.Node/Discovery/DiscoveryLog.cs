using Microsoft.Extensions.Logging;

namespace SecureMesh.Node.Discovery;

internal static partial class DiscoveryLog
{
    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "LAN discovery on: beacons to {Group} every {Interval}")]
    public static partial void Started(ILogger logger, string group, TimeSpan interval);

    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "LAN discovery off")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "LAN discovery unavailable ({Reason}); the node runs without it")]
    public static partial void Unavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 403, Level = LogLevel.Warning, Message = "cannot send discovery beacons: {Reason}")]
    public static partial void SendFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 410, Level = LogLevel.Information, Message = "discovered {State} peer {PeerId} at {EndPoint}")]
    public static partial void Discovered(ILogger logger, string state, string peerId, string endPoint);

    [LoggerMessage(EventId = 411, Level = LogLevel.Debug, Message = "ignored a datagram from {Remote}: {Verdict}")]
    public static partial void Ignored(ILogger logger, string remote, BeaconVerdict verdict);

    [LoggerMessage(EventId = 412, Level = LogLevel.Information, Message = "dialling trusted peer {PeerId} found at {EndPoint}")]
    public static partial void Dialling(ILogger logger, string peerId, string endPoint);

    [LoggerMessage(EventId = 413, Level = LogLevel.Information, Message = "could not connect to discovered peer {PeerId} at {EndPoint}: {Reason}")]
    public static partial void DialFailed(ILogger logger, string peerId, string endPoint, string reason);

    [LoggerMessage(EventId = 414, Level = LogLevel.Error, Message = "discovery could not update the trust store: {Reason}")]
    public static partial void StoreFailed(ILogger logger, string reason);
}

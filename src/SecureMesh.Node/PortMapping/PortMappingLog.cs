using Microsoft.Extensions.Logging;

namespace SecureMesh.Node.PortMapping;

internal static partial class PortMappingLog
{
    [LoggerMessage(EventId = 1700, Level = LogLevel.Information, Message = "port mapping: {External} -> port {InternalPort} by {Protocol} from gateway {Gateway}, for {Lifetime}")]
    public static partial void Mapped(ILogger logger, string external, int internalPort, string protocol, string gateway, TimeSpan lifetime);

    [LoggerMessage(EventId = 1701, Level = LogLevel.Information, Message = "port mapping: {Reason}; trying again in {Retry}")]
    public static partial void Failed(ILogger logger, string reason, TimeSpan retry);

    [LoggerMessage(EventId = 1702, Level = LogLevel.Debug, Message = "port mapping: no default gateway; nothing to ask")]
    public static partial void NoGateway(ILogger logger);

    [LoggerMessage(EventId = 1703, Level = LogLevel.Warning, Message = "port mapping: dropped an answer from {Gateway}: {Reason}")]
    public static partial void Dropped(ILogger logger, string gateway, string reason);

    [LoggerMessage(EventId = 1704, Level = LogLevel.Debug, Message = "port mapping: gateway {Gateway} unreachable ({Error})")]
    public static partial void GatewayUnreachable(ILogger logger, string gateway, string error);

    [LoggerMessage(EventId = 1705, Level = LogLevel.Information, Message = "port mapping: {External} removed from gateway {Gateway}")]
    public static partial void Removed(ILogger logger, string external, string gateway);

    [LoggerMessage(EventId = 1706, Level = LogLevel.Warning, Message = "port mapping: could not remove {External} from gateway {Gateway}; it expires by itself")]
    public static partial void RemoveFailed(ILogger logger, string external, string gateway);
}

using Microsoft.Extensions.Logging;

namespace SecureMesh.Node.Addresses;

internal static partial class AddressLog
{
    [LoggerMessage(EventId = 1770, Level = LogLevel.Debug, Message = "addresses: told {Asker} {Count} addresses of {Peer}")]
    public static partial void Answered(ILogger logger, string asker, string peer, int count);

    [LoggerMessage(EventId = 1771, Level = LogLevel.Information, Message = "addresses: {Source} knows {Count} addresses of {Peer}")]
    public static partial void Learned(ILogger logger, string peer, string source, int count);

    [LoggerMessage(EventId = 1772, Level = LogLevel.Debug, Message = "addresses: asking {Source} where {Peer} is failed: {Reason}")]
    public static partial void AskFailed(ILogger logger, string source, string peer, string reason);

    [LoggerMessage(EventId = 1773, Level = LogLevel.Warning, Message = "addresses: could not store learned addresses: {Reason}")]
    public static partial void StoreFailed(ILogger logger, string reason);
}

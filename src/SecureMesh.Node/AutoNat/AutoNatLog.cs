using Microsoft.Extensions.Logging;

namespace SecureMesh.Node.AutoNat;

internal static partial class AutoNatLog
{
    [LoggerMessage(EventId = 1750, Level = LogLevel.Information, Message = "AutoNAT: {Address} is {State} (asked {Peer})")]
    public static partial void Result(ILogger logger, string address, string state, string peer);

    [LoggerMessage(EventId = 1751, Level = LogLevel.Warning, Message = "AutoNAT: refused {Peer}'s dial-back request: {Reason}")]
    public static partial void Refused(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = 1752, Level = LogLevel.Debug, Message = "AutoNAT: dialled {Peer} back at {Address}: {Status}")]
    public static partial void DialedBack(ILogger logger, string peer, string address, string status);

    [LoggerMessage(EventId = 1753, Level = LogLevel.Warning, Message = "AutoNAT: {Peer} broke the protocol: {Reason}")]
    public static partial void ProtocolError(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = 1754, Level = LogLevel.Debug, Message = "AutoNAT: asking {Peer} about {Address} failed: {Reason}")]
    public static partial void AskFailed(ILogger logger, string peer, string address, string reason);

    [LoggerMessage(EventId = 1755, Level = LogLevel.Warning, Message = "AutoNAT: {Peer} reported a successful dial back of {Address} but no dial back with our nonce arrived; ignored")]
    public static partial void Unproven(ILogger logger, string peer, string address);

    [LoggerMessage(EventId = 1756, Level = LogLevel.Debug, Message = "AutoNAT: the dial back from {Peer} failed: {Reason}")]
    public static partial void DialBackFailed(ILogger logger, string peer, string reason);
}

using Microsoft.Extensions.Logging;

namespace SecureMesh.Core.Channel;

/// <summary>Source-generated log messages with fixed event ids. Never pass key material here.</summary>
internal static partial class ChannelLog
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Secure channel established with {PeerId} ({Remote}) as {Role}")]
    public static partial void HandshakeSucceeded(ILogger logger, string peerId, string? remote, string role);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Handshake with {Remote} failed: {Reason}")]
    public static partial void HandshakeFailed(ILogger logger, string? remote, string reason);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Warning, Message = "{Count} more failed or refused connections were not logged one by one (at most {Burst} lines per {Window})")]
    public static partial void Suppressed(ILogger logger, long count, int burst, TimeSpan window);

    /// <summary>Logs a failed handshake within <paramref name="throttle"/>'s bounds.</summary>
    public static void HandshakeFailed(ILogger logger, LogThrottle throttle, string? remote, string reason)
    {
        if (Admit(logger, throttle))
        {
            HandshakeFailed(logger, remote, reason);
        }
    }

    private static bool Admit(ILogger logger, LogThrottle throttle)
    {
        var admitted = throttle.TryWrite(out var suppressed);
        if (suppressed > 0)
        {
            Suppressed(logger, suppressed, throttle.Burst, throttle.Window);
        }
        return admitted;
    }
}

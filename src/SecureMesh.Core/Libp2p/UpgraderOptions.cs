using Microsoft.Extensions.Logging;
using SecureMesh.Core.Libp2p.Multistream;

namespace SecureMesh.Core.Libp2p;

/// <summary>Settings of the connection <see cref="Upgrader"/>.</summary>
public sealed class UpgraderOptions
{
    /// <summary>The whole upgrade (multistream-select, Noise, muxer choice) must finish within this time.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The stream muxers we offer, in our order of preference (sent in the Noise extensions).</summary>
    public IReadOnlyList<string> StreamMuxers { get; init; } = [Upgrader.YamuxProtocolId];

    /// <summary>Proposals a dialer may make in one multistream-select negotiation before it is disconnected.</summary>
    public int MaxProposals { get; init; } = MultistreamOptions.Default.MaxProposals;

    /// <summary>Source of time for the deadline (tests inject a fake one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where upgrades and their failures are reported; never receives secrets.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>Bounds the warnings written for failed upgrades.</summary>
    public LogThrottle FailureLog { get; init; } = new();

    /// <summary>The defaults: 10 s, <c>/yamux/1.0.0</c>.</summary>
    public static UpgraderOptions Default { get; } = new();

    internal void Validate()
    {
        if (HandshakeTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(HandshakeTimeout), "The handshake timeout must be positive.");
        }
        ArgumentNullException.ThrowIfNull(StreamMuxers);
        if (StreamMuxers.Count == 0 || StreamMuxers.Any(m => string.IsNullOrEmpty(m) || m.Contains('\n', StringComparison.Ordinal)))
        {
            throw new ArgumentException("At least one stream muxer, each a non-empty protocol ID, must be offered.", nameof(StreamMuxers));
        }
        if (MaxProposals < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxProposals), "At least one proposal must be allowed.");
        }
        ArgumentNullException.ThrowIfNull(TimeProvider);
        ArgumentNullException.ThrowIfNull(FailureLog);
    }
}

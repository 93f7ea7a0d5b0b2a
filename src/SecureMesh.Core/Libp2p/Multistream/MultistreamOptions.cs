namespace SecureMesh.Core.Libp2p.Multistream;

/// <summary>Limits of one multistream-select negotiation, as dialer or listener.</summary>
public sealed class MultistreamOptions
{
    /// <summary>The whole negotiation must finish within this time.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Proposals (and <c>ls</c> requests) a listener answers before it gives up on the dialer.</summary>
    public int MaxProposals { get; init; } = 32;

    /// <summary>Source of time for the deadline (tests inject a fake one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The default limits: 10 s, 32 proposals.</summary>
    public static MultistreamOptions Default { get; } = new();

    internal void Validate()
    {
        if (Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(Timeout), "The negotiation timeout must be positive.");
        }
        if (MaxProposals < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxProposals), "At least one proposal must be allowed.");
        }
        ArgumentNullException.ThrowIfNull(TimeProvider);
    }
}

namespace SecureMesh.Node.Relay;

/// <summary>The relay service's limits and the relay client's timing; the <c>relay-*</c> settings override the limits.</summary>
public sealed class RelayOptions
{
    /// <summary>How long a reservation lasts before the client must renew it.</summary>
    public TimeSpan ReservationTtl { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Reservations the service holds at once (one per peer; a renewal replaces the peer's own).</summary>
    public int MaxReservations { get; init; } = 128;

    /// <summary>Circuits the service runs at once, in total.</summary>
    public int MaxCircuits { get; init; } = 256;

    /// <summary>How often the client looks at its relays (reserve, renew, read the settings again).</summary>
    public TimeSpan ClientInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How long the client waits after a refused or failed reservation before asking that relay again.</summary>
    public TimeSpan RetryAfterFailure { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A reservation is renewed when less than this part of its lifetime is left.</summary>
    public double RenewAtRemaining { get; init; } = 0.25;

    /// <summary>Bytes copied per read while splicing a circuit.</summary>
    public int SpliceBufferSize { get; init; } = 64 * 1024;

    /// <summary>How long a relayed connection stays open after a direct one replaced it (streams in flight finish).</summary>
    public TimeSpan ReplacedGrace { get; init; } = TimeSpan.FromSeconds(5);
}

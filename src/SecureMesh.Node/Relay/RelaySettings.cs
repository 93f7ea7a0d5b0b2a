using System.Globalization;
using SecureMesh.Core.Addressing;
using SecureMesh.Storage;

namespace SecureMesh.Node.Relay;

/// <summary>Whether this node relays for others.</summary>
public enum RelayServiceMode
{
    /// <summary>No relay service: hop is not offered.</summary>
    Off,
    /// <summary>Reservations and circuits for peers this node trusts (only trusted peers keep a connection at all).</summary>
    Trusted,
}

/// <summary>The relay settings as stored (<see cref="NodeSettings"/>), read together.</summary>
internal sealed record RelaySettings(RelayServiceMode Mode, IReadOnlyList<Multiaddr> Relays, ulong CircuitData, uint CircuitDuration, int CircuitsPerPeer)
{
    public static RelaySettings Default { get; } = new(RelayServiceMode.Trusted, [], 0, 0, 8);

    /// <summary>Reads the settings; a value that no longer parses counts as its default.</summary>
    public static RelaySettings Read(ConfigStore config)
    {
        var mode = string.Equals(config.Get(NodeSettings.RelayService), "off", StringComparison.OrdinalIgnoreCase) ? RelayServiceMode.Off : RelayServiceMode.Trusted;
        var relays = ParseRelays(config.Get(NodeSettings.Relays) ?? string.Empty, out _);
        var data = config.Get(NodeSettings.RelayCircuitData) is { } d && SettingDefinition.ParseSize(d) is >= 0 and var bytes ? (ulong)bytes : 0UL;
        var duration = uint.TryParse(config.Get(NodeSettings.RelayCircuitDuration), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 0U;
        var perPeer = int.TryParse(config.Get(NodeSettings.RelayCircuitsPerPeer), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : Default.CircuitsPerPeer;
        return new RelaySettings(mode, relays, data, duration, perPeer);
    }

    /// <summary>
    /// Parses the <c>relays</c> setting: comma-separated multiaddrs, each a TCP address ending in <c>/p2p/PEERID</c>.
    /// Returns the good ones; <paramref name="error"/> names the first bad one (null when all are good).
    /// </summary>
    public static IReadOnlyList<Multiaddr> ParseRelays(string text, out string? error)
    {
        error = null;
        var result = new List<Multiaddr>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!DialAddress.TryParse(part, out var address, out var e))
            {
                error ??= e;
                continue;
            }
            if (address.Multiaddr is null || address.PeerId is null)
            {
                error ??= $"relay address {address.Text} must be a multiaddr ending in /p2p/PEERID";
                continue;
            }
            if (result.Count >= 16)
            {
                error ??= "at most 16 relays";
                break;
            }
            result.Add(address.Multiaddr);
        }
        return result;
    }
}

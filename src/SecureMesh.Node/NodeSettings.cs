using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;

namespace SecureMesh.Node;

/// <summary>One tunable setting: its key, default, meaning and validation.</summary>
public sealed record SettingDefinition(string Key, string Default, string Description, Func<string, string?> Validate)
{
    /// <summary>Returns the canonical form of <paramref name="value"/> or throws a clear error.</summary>
    public string Normalize(string value)
    {
        var trimmed = value.Trim();
        var error = Validate(trimmed);
        if (error is not null)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"invalid value for {Key}: {error}");
        }
        return Key switch
        {
            NodeSettings.Discovery or NodeSettings.PortMapping => ParseSwitch(trimmed) ? "on" : "off",
            NodeSettings.ChunkSize or NodeSettings.UploadLimit or NodeSettings.RelayCircuitData => ParseSize(trimmed).ToString(CultureInfo.InvariantCulture),
            NodeSettings.RelayService => trimmed.ToLowerInvariant(),
            NodeSettings.Relays => string.Join(",", Relay.RelaySettings.ParseRelays(trimmed, out _)),
            NodeSettings.Listen => DialAddress.Parse(trimmed, allowPortZero: true).Text,
            // Resolved once, when set, and shown resolved: a release never follows a link there later (it is refused).
            NodeSettings.DownloadDir => Core.Content.ShareFileSystem.Resolve(Quarantine.QuarantineManager.ExpandHome(trimmed)),
            _ => trimmed,
        };
    }

    internal static bool ParseSwitch(string value) => value.ToLowerInvariant() switch
    {
        "on" or "true" or "yes" or "1" => true,
        _ => false,
    };

    /// <summary>Parses sizes like <c>1048576</c>, <c>256k</c>, <c>4MiB</c>, <c>1g</c>, <c>2t</c> (powers of 1024); -1 when it is none, or too large.</summary>
    public static long ParseSize(string value)
    {
        var text = value.Trim().ToLowerInvariant().Replace("ib", string.Empty, StringComparison.Ordinal).TrimEnd('b');
        long multiplier = 1;
        if (text.Length > 0 && "kmgt".Contains(text[^1], StringComparison.Ordinal))
        {
            multiplier = text[^1] switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, _ => 1L << 40 };
            text = text[..^1];
        }
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > long.MaxValue / multiplier)
        {
            return -1;
        }
        return n * multiplier;
    }
}

/// <summary>The node's settings: names, defaults and validation. Values live in the database's config table.</summary>
public static class NodeSettings
{
    /// <summary>TCP address the node listens on.</summary>
    public const string Listen = "listen";
    /// <summary>Where released downloads go.</summary>
    public const string DownloadDir = "download-dir";
    /// <summary>The scanner command (ClamAV convention).</summary>
    public const string Scanner = "scanner";
    /// <summary>How long the scanner may run, in seconds.</summary>
    public const string ScannerTimeout = "scanner-timeout";
    /// <summary>Chunk size for newly indexed files.</summary>
    public const string ChunkSize = "chunk-size";
    /// <summary>Per-peer upload limit in bytes per second (0 = none).</summary>
    public const string UploadLimit = "upload-limit";
    /// <summary>LAN discovery on or off.</summary>
    public const string Discovery = "discovery";
    /// <summary>Most concurrent authenticated connections.</summary>
    public const string MaxConnections = "max-connections";
    /// <summary>Seconds a handshake may take.</summary>
    public const string HandshakeTimeout = "handshake-timeout";

    /// <summary>Ask the home router for a port mapping (PCP, NAT-PMP) on or off.</summary>
    public const string PortMapping = "port-mapping";

    /// <summary>The default listen address.</summary>
    public const string DefaultListen = "0.0.0.0:4747";

    /// <summary>Relay service for others: off or trusted.</summary>
    public const string RelayService = "relay-service";

    /// <summary>Relays to reserve a slot on (comma-separated multiaddrs).</summary>
    public const string Relays = "relays";

    /// <summary>Bytes per direction a relayed circuit may carry (0: no limit).</summary>
    public const string RelayCircuitData = "relay-circuit-data";

    /// <summary>Seconds a relayed circuit may last (0: no limit).</summary>
    public const string RelayCircuitDuration = "relay-circuit-duration";

    /// <summary>Circuits one peer may have through this relay at once.</summary>
    public const string RelayCircuitsPerPeer = "relay-circuits-per-peer";

    /// <summary>Every known setting, in display order.</summary>
    public static IReadOnlyList<SettingDefinition> All { get; } =
    [
        new(Listen, DefaultListen, "TCP address to listen on (HOST:PORT or /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT; a name is resolved when the node starts)", v => TryParseListen(v, out _, out var e) ? null : e),
        new(DownloadDir, "~/Downloads/SecureMesh", "folder released downloads are moved to", v => v.Length == 0 ? "must not be empty" : v.Contains('\0', StringComparison.Ordinal) ? "contains a NUL character" : null),
        new(Scanner, string.Empty, "virus scanner command, ClamAV convention: exit 0 clean, 1 infected; {} is replaced by the file (empty: none)", Quarantine.ScannerRunner.Validate),
        new(ScannerTimeout, "120", "seconds the scanner may run before the file is held", v => IntInRange(v, 1, 86_400)),
        new(ChunkSize, "1048576", "chunk size for newly shared files (power of two, 16KiB..16MiB; a chunk and its proof must fit in one message)", ValidateChunkSize),
        new(UploadLimit, "0", "per-peer upload limit in bytes per second, 0 for none (suffixes k, m, g)", v => SettingDefinition.ParseSize(v) < 0 ? "expected a size such as 0, 512k or 10m" : null),
        new(Discovery, "on", "LAN discovery beacons (on/off)", ValidateSwitch),
        new(MaxConnections, "256", "most authenticated connections at once", v => IntInRange(v, 1, 100_000)),
        new(HandshakeTimeout, "5", "seconds a peer has to finish the handshake", v => IntInRange(v, 1, 120)),
        new(PortMapping, "on", "ask the home router to forward the listen port (PCP, else NAT-PMP) and advertise the mapped address (on/off)", ValidateSwitch),
        new(RelayService, "trusted", "relay service for others: trusted (reservations and circuits for peers this node trusts) or off", v => v.ToLowerInvariant() is "off" or "trusted" ? null : "expected off or trusted"),
        new(Relays, string.Empty, "relays to reserve a slot on, comma-separated multiaddrs ending in /p2p/PEERID (trusted peers offering relay service are used too)", v => { Relay.RelaySettings.ParseRelays(v, out var e); return e; }),
        new(RelayCircuitData, "0", "bytes a relayed circuit may carry each way through this node's relay service, 0 for no limit (suffixes k, m, g)", v => SettingDefinition.ParseSize(v) < 0 ? "expected a size such as 0, 512k or 10m" : null),
        new(RelayCircuitDuration, "0", "seconds a relayed circuit through this node's relay service may last, 0 for no limit", v => IntInRange(v, 0, 604_800)),
        new(RelayCircuitsPerPeer, "8", "circuits one peer may have through this node's relay service at once", v => IntInRange(v, 1, 1024)),
        new(Backup.BackupService.CheckIntervalKey, "86400", "seconds between proof-of-storage rounds against backup holders", v => IntInRange(v, 10, 31_536_000)),
    ];

    private static string? ValidateSwitch(string v) =>
        v.ToLowerInvariant() is "on" or "off" or "true" or "false" or "yes" or "no" or "1" or "0" ? null : "expected on or off";

    /// <summary>Looks up a setting; an unknown key is a clear error.</summary>
    public static SettingDefinition Get(string key) =>
        All.FirstOrDefault(s => string.Equals(s.Key, key, StringComparison.Ordinal))
        ?? throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
            $"unknown setting '{key}'; known settings: {string.Join(", ", All.Select(s => s.Key))}");

    /// <summary>Checks a listen address without touching the network: <c>HOST:PORT</c> or a TCP multiaddr, port 0 allowed (any free port), no <c>/p2p</c>.</summary>
    public static bool TryParseListen(string text, [NotNullWhen(true)] out DialAddress? address, out string error)
    {
        if (!DialAddress.TryParse(text, out address, out error, allowPortZero: true))
        {
            return false;
        }
        if (address.PeerId is not null)
        {
            error = $"invalid address '{address.Text}': a listen address takes no /p2p part";
            address = null;
            return false;
        }
        return true;
    }

    /// <summary>
    /// Turns a listen address (or a literal peer address) into an endpoint: an IP address as it is; a name resolved
    /// now, to its first address (IPv4 first). False with the reason when it does not parse or resolve.
    /// </summary>
    public static bool TryParseEndPoint(string text, out IPEndPoint endPoint, out string error)
    {
        endPoint = new IPEndPoint(IPAddress.Any, 0);
        if (!TryParseListen(text, out var address, out error))
        {
            return false;
        }
        try
        {
            endPoint = address.ResolveAsync(CancellationToken.None).GetAwaiter().GetResult()[0];
            return true;
        }
        catch (SecureMeshException e)
        {
            error = e.Message;
            return false;
        }
    }

    /// <summary>As <see cref="TryParseEndPoint"/>, throwing a clear <see cref="SecureMeshException"/> (InvalidInput for a malformed address, Network when a name does not resolve).</summary>
    public static IPEndPoint ParseEndPoint(string text)
    {
        if (!TryParseListen(text, out var address, out var error))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, error);
        }
        return address.ResolveAsync(CancellationToken.None).GetAwaiter().GetResult()[0];
    }

    private static string? IntInRange(string v, int min, int max) =>
        int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? null
            : $"expected a whole number from {min} to {max}";

    /// <summary>
    /// The largest chunk size a node may index with: a chunk, its header and its longest proof must fit in one message
    /// under the node's message cap, or every file of at least one full chunk could never be served.
    /// </summary>
    public static int MaxChunkSize { get; } = Core.Wire.WireLimits.LargestChunkFor(new NodeOptions { Home = string.Empty }.MaxMessageSize);

    /// <summary>The chunk size to index with for a stored <c>chunk-size</c> value; the default when unset or no longer valid.</summary>
    public static int ChunkSizeOrDefault(string? stored) =>
        stored is not null && int.TryParse(stored, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && ValidateChunkSize(stored) is null
            ? n
            : Core.Content.ChunkLayout.DefaultChunkSize;

    private static string? ValidateChunkSize(string v)
    {
        var n = SettingDefinition.ParseSize(v);
        if (n is < Core.Content.ChunkLayout.MinChunkSize || (n & (n - 1)) != 0)
        {
            return $"expected a power of two from 16KiB to {MaxChunkSize >> 20}MiB, such as 1m";
        }
        return n > MaxChunkSize
            ? $"{n} bytes is too large: a chunk with its header and proof must fit in one {new NodeOptions { Home = string.Empty }.MaxMessageSize}-byte message, so the largest chunk size is {MaxChunkSize >> 20}MiB"
            : null;
    }
}

using System.Buffers.Binary;
using System.Globalization;
using System.Net;

namespace SecureMesh.Node.PortMapping;

/// <summary>The IPv4 default gateway, read from the kernel's routing table (<c>/proc/net/route</c> on Linux).</summary>
internal static class DefaultGateway
{
    private const int RouteUp = 0x1;
    private const int RouteGateway = 0x2;

    /// <summary>The gateway of the default route with the lowest metric, or null (no such file, no default route).</summary>
    public static IPAddress? Find(string path = "/proc/net/route")
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return Parse(text);
    }

    /// <summary>
    /// Parses the table: a header line, then per route "Iface Destination Gateway Flags RefCnt Use Metric Mask …" with
    /// the addresses as 8 hex digits in host (little-endian) byte order. Lines that do not parse are skipped.
    /// </summary>
    public static IPAddress? Parse(string table)
    {
        IPAddress? best = null;
        var bestMetric = int.MaxValue;
        foreach (var line in table.Split('\n').Skip(1))
        {
            var f = line.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 8
                || !uint.TryParse(f[1], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var destination)
                || !uint.TryParse(f[2], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var gateway)
                || !int.TryParse(f[3], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var flags)
                || !int.TryParse(f[6], NumberStyles.Integer, CultureInfo.InvariantCulture, out var metric)
                || !uint.TryParse(f[7], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var mask))
            {
                continue;
            }
            if (destination != 0 || mask != 0 || gateway == 0 || (flags & (RouteUp | RouteGateway)) != (RouteUp | RouteGateway) || metric >= bestMetric)
            {
                continue;
            }
            var bytes = new byte[4];
            // The kernel prints the address as a number in host order; on little-endian hosts the first octet is the low byte.
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, gateway);
            best = new IPAddress(bytes);
            bestMetric = metric;
        }
        return best;
    }
}

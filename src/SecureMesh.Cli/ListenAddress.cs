using System.Net;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Cli;

/// <summary>Reads the configured listen address without starting anything.</summary>
internal static class ListenAddress
{
    public static string Read(string home) =>
        DatabasePeek.Config(home, NodeSettings.Listen) ?? NodeSettings.DefaultListen;

    /// <summary>
    /// Where this node can be dialled, as multiaddrs ending in <c>/p2p/</c><paramref name="peer"/>: the running node's bound
    /// address when one runs (its real port), else the listen setting; the unspecified address expanded to the
    /// addresses of the machine's interfaces.
    /// </summary>
    public static IReadOnlyList<string> Multiaddrs(string home, PeerId peer)
    {
        IPEndPoint? endPoint = null;
        var learned = new List<string>();
        if (NodeLock.IsHeld(home))
        {
            try
            {
                using var client = new ControlClient(home);
                var status = client.GetStatusAsync(CancellationToken.None).GetAwaiter().GetResult();
                if (status.Listen.Count > 0 && IPEndPoint.TryParse(status.Listen[0], out var bound))
                {
                    endPoint = bound;
                }
                // What the node learned and gives out: the router's mapping, observed addresses AutoNAT confirmed.
                learned.AddRange((status.Reachability ?? []).Where(r => r.Advertised && r.Source != "listen").Select(r => r.Address + "/p2p/" + peer.Text));
            }
            catch (Core.SecureMeshException)
            {
                // The node does not answer: fall back to the setting.
            }
        }
        if (endPoint is null && !NodeSettings.TryParseEndPoint(Read(home), out endPoint, out _))
        {
            return [];
        }
        return [.. ListenAddresses.Multiaddrs(endPoint, peer).Concat(learned).Distinct(StringComparer.Ordinal)];
    }
}

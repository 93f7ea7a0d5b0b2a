using System.Runtime.CompilerServices;
using SecureMesh.Cli.Tui;
using Terminal.Gui.App;
using Terminal.Gui.Drivers;
using Terminal.Gui.Input;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace SecureMesh.Cli.Tests.Tui;

internal static class HeadlessTerminal
{
    // Terminal.Gui must not probe or switch the real terminal of the test runner.
#pragma warning disable CA2255 // a module initializer in a test assembly is exactly what it is for
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void DisableRealDriverIO() => Environment.SetEnvironmentVariable("DisableRealDriverIO", "1");
}

/// <summary>What a dialog handler sees: the dialog, the screen when it opened, and ways to answer it.</summary>
internal sealed class DialogContext(TuiHarness harness, Runnable dialog, string screen)
{
    public Runnable Dialog { get; } = dialog;

    public string Screen { get; } = screen;

    public IApplication App => harness.App;

    /// <summary>The dialog's text fields, in order.</summary>
    public List<TextField> Fields => [.. Descendants(Dialog).OfType<TextField>()];

    /// <summary>Presses the button whose text (without the hotkey mark) is <paramref name="text"/>.</summary>
    public void Press(string text)
    {
        var buttons = Dialog is Dialog dialog ? dialog.Buttons : [.. Descendants(Dialog).OfType<Button>()];
        var button = buttons.FirstOrDefault(b => b.Text.Replace("_", string.Empty, StringComparison.Ordinal) == text)
            ?? throw new InvalidOperationException($"no button '{text}' among {string.Join(", ", buttons.Select(b => b.Text))}");
        button.SetFocus();
        App.Keyboard.RaiseKeyDownEvent(Terminal.Gui.Input.Key.Enter);
    }

    public void Key(Key key) => App.Keyboard.RaiseKeyDownEvent(key);

    private static IEnumerable<View> Descendants(View view)
    {
        foreach (var sub in view.SubViews)
        {
            yield return sub;
            foreach (var deeper in Descendants(sub))
            {
                yield return deeper;
            }
        }
    }
}

/// <summary>
/// A headless Terminal.Gui application around a <see cref="TuiApp"/>: polling off (refreshes are explicit), dialogs answered by
/// queued handlers (any dialog without one is recorded and closed with Esc), the screen read back as text.
/// </summary>
internal sealed class TuiHarness : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly SessionToken? _session;
    private readonly HashSet<Runnable> _answered = [];

    public TuiHarness(FakeNodeClient? client = null, int width = 80, int height = 24, TimeSpan? callTimeout = null)
    {
        App = Application.Create().Init(DriverRegistry.Names.ANSI);
        App.Driver!.SetScreenSize(width, height);
        Client = client ?? new FakeNodeClient();
        Tui = new TuiApp(App, Client, new TuiOptions { PollInterval = null, CallTimeout = callTimeout ?? TimeSpan.FromSeconds(5) });
        App.Iteration += OnIteration;
        _session = App.Begin(Tui.Top);
        Tui.StartPolling();
        WaitFor(() => Tui.Status is not null && Screen.Contains(FakeNodeClient.SelfId, StringComparison.Ordinal), "the first refresh");
    }

    public IApplication App { get; }

    public FakeNodeClient Client { get; }

    public TuiApp Tui { get; }

    /// <summary>Handlers for the next dialogs, in the order they open.</summary>
    public Queue<Action<DialogContext>> Dialogs { get; } = new();

    /// <summary>The screen text of every dialog that opened, in order.</summary>
    public List<string> SeenDialogs { get; } = [];

    public string Screen
    {
        get
        {
            App.LayoutAndDraw();
            return App.Driver?.ToString() ?? string.Empty;
        }
    }

    /// <summary>Runs queued UI work (results posted by background calls) and redraws.</summary>
    public void Pump()
    {
        App.TimedEvents!.RunTimers();
        App.LayoutAndDraw();
    }

    public void Press(Key key)
    {
        App.Keyboard.RaiseKeyDownEvent(key);
        Pump();
    }

    public void WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            Pump();
            if (condition())
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited {Patience.TotalSeconds} s for {what}; the screen:\n{Screen}\ncalls: {string.Join(", ", Client.Calls)}\ndialogs:\n{string.Join("\n----\n", SeenDialogs)}");
            }
            Thread.Sleep(5);
        }
    }

    public void WaitForScreen(string text) => WaitFor(() => Screen.Contains(text, StringComparison.Ordinal), $"\"{text}\" on the screen");

    public void WaitForDialog(string text) => WaitFor(() => SeenDialogs.Any(d => d.Contains(text, StringComparison.Ordinal)), $"a dialog showing \"{text}\"");

    /// <summary>Refreshes the visible view and waits until the UI has applied the answer.</summary>
    public void Refresh(Func<bool> until, string what)
    {
        Tui.RequestRefresh();
        WaitFor(until, what);
    }

    private void OnIteration(object? sender, EventArgs<IApplication?> e)
    {
        if (App.TopRunnableView is not Runnable dialog || ReferenceEquals(dialog, Tui.Top) || !_answered.Add(dialog))
        {
            return;
        }
        App.LayoutAndDraw();
        var screen = App.Driver!.ToString() ?? string.Empty;
        SeenDialogs.Add(screen);
        var context = new DialogContext(this, dialog, screen);
        if (Dialogs.TryDequeue(out var handler))
        {
            handler(context);
        }
        else
        {
            context.Key(Key.Esc);
        }
    }

    public void Dispose()
    {
        Tui.Dispose();
        if (_session is not null)
        {
            App.End(_session);
        }
        App.Dispose();
    }
}

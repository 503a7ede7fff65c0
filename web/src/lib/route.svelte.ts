/**
 * Where the page is: the path in the address bar, so that a link to an app can be shared and
 * reloaded (the console's server answers every path with the page).
 */

export const route = $state({ path: location.pathname });

window.addEventListener('popstate', () => {
  route.path = location.pathname;
});

/** Goes to `path` without reloading the page. */
export function navigate(path: string): void {
  if (path !== route.path) {
    history.pushState(null, '', path);
    route.path = path;
    window.scrollTo(0, 0);
  }
}

/** For `<a href=… onclick={follow}>`: a plain click navigates in the page, others as usual. */
export function follow(event: MouseEvent): void {
  const link = event.currentTarget as HTMLAnchorElement;
  if (event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey) {
    event.preventDefault();
    navigate(link.pathname);
  }
}
